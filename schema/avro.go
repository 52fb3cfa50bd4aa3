package schema

func parseAvro(s Schema) (parsed, error) {
	return nil, &ParseError{Type: Avro, Reason: "not implemented yet"}
}
