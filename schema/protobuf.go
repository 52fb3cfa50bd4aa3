package schema

func parseProtobuf(s Schema) (parsed, error) {
	return nil, &ParseError{Type: Protobuf, Reason: "not implemented yet"}
}
