package broker

// RouteScopes is the broker's route table: the token scope each route
// pattern needs.
func RouteScopes(s *Server) map[string]string {
	out := map[string]string{}
	for p, sc := range s.routeNeed {
		out[p] = sc.String()
	}
	return out
}
