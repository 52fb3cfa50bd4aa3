package registry

// SetParseHooks lets tests see a request wait for a parse slot, give its
// place up, and start parsing (each may block to hold the slot).
func SetParseHooks(s *Server, waiting, gaveUp, parsing func()) {
	s.hooks = parseHooks{waiting: waiting, gaveUp: gaveUp, parsing: parsing}
}

// ParsesStarted counts the candidate schemas the server began to parse.
func ParsesStarted(s *Server) int64 { return s.parses.Load() }

// ParseSlotsTaken is the number of parses running or waiting.
func ParseSlotsTaken(s *Server) int { return len(s.admit) }

// RouteScopes is the server's route table: the token scope each route
// pattern needs.
func RouteScopes(s *Server) map[string]string {
	out := map[string]string{}
	for p, sc := range s.routeNeed {
		out[p] = sc.String()
	}
	return out
}
