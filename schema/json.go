package schema

func parseJSON(s Schema) (parsed, error) {
	return nil, &ParseError{Type: JSON, Reason: "not implemented yet"}
}
