package system

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// build turns a schema-valid document into a System and checks what a JSON
// Schema cannot: unique names and references between sections.
func build(name string, root *yaml.Node) (*System, Errors) {
	var errs Errors
	bad := func(n *yaml.Node, path, rule, format string, args ...any) {
		e := &Error{File: name, Path: path, Rule: rule, Msg: fmt.Sprintf(format, args...)}
		if n != nil {
			e.Line, e.Column = n.Line, n.Column
		}
		errs = append(errs, e)
	}
	s := &System{Version: 1, Name: str(root, "system")}
	durationAt := func(n *yaml.Node, key, path string) int64 {
		d, err := duration(n, key)
		if err != nil || d < 0 {
			bad(field(n, key), path+"."+key, "duration", "%q is not a duration", str(n, key))
		}
		return int64(d)
	}
	for i, n := range items(root, "services") {
		p := "services[" + strconv.Itoa(i) + "]"
		svc := &Service{Name: str(n, "name"), Owner: str(n, "owner"), Databases: strs(n, "databases"), Writes: strs(n, "writes"), Line: n.Line}
		if v := field(n, "availability"); v != nil {
			svc.Availability, _ = strconv.ParseFloat(v.Value, 64)
		}
		svc.Latency = durationFrom(durationAt(n, "latency", p))
		for j, in := range items(n, "integrations") {
			it := &Integration{
				Kind: Kind(str(in, "kind")), Protocol: str(in, "protocol"), Direction: Direction(str(in, "direction")),
				To: str(in, "to"), Route: str(in, "route"), Topic: str(in, "topic"), Subject: str(in, "subject"),
				Group: str(in, "group"), Line: in.Line,
			}
			if it.Kind == Sync && it.Direction == "" {
				it.Direction = Call
			}
			if c := field(in, "contract"); c != nil {
				it.Contract = &ContractPair{Consumer: str(c, "consumer"), Provider: str(c, "provider")}
			}
			_ = j
			svc.Integrations = append(svc.Integrations, it)
		}
		s.Services = append(s.Services, svc)
	}
	for _, n := range items(root, "topics") {
		s.Topics = append(s.Topics, &Topic{Name: str(n, "name"), Owner: str(n, "owner"), Broker: str(n, "broker"), Subject: str(n, "subject"), Line: n.Line})
	}
	for _, n := range items(root, "databases") {
		s.Databases = append(s.Databases, &Database{Name: str(n, "name"), Engine: str(n, "engine"), Tables: strs(n, "tables"), Line: n.Line})
	}
	for _, n := range items(root, "deadLetters") {
		s.DeadLetters = append(s.DeadLetters, &DeadLetters{Name: str(n, "name"), Database: str(n, "database"), Services: strs(n, "services"), Alert: str(n, "alert"), Line: n.Line})
	}
	for i, n := range items(root, "alerts") {
		a := &Alert{Name: str(n, "name"), On: str(n, "on"), Route: str(n, "route"), Owner: str(n, "owner"), Line: n.Line}
		a.Within = durationFrom(durationAt(n, "within", "alerts["+strconv.Itoa(i)+"]"))
		s.Alerts = append(s.Alerts, a)
	}

	// Unique names per section.
	unique := func(section string, names []string) {
		seen := map[string]int{}
		for i, nm := range names {
			n := items(root, section)[i]
			if first, ok := seen[nm]; ok {
				bad(field(n, "name"), fmt.Sprintf("%s[%d].name", section, i), "unique", "%q is already declared at %s[%d]", nm, section, first)
				continue
			}
			seen[nm] = i
		}
	}
	names := func(n int, f func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	unique("services", names(len(s.Services), func(i int) string { return s.Services[i].Name }))
	unique("topics", names(len(s.Topics), func(i int) string { return s.Topics[i].Name }))
	unique("databases", names(len(s.Databases), func(i int) string { return s.Databases[i].Name }))
	unique("deadLetters", names(len(s.DeadLetters), func(i int) string { return s.DeadLetters[i].Name }))
	unique("alerts", names(len(s.Alerts), func(i int) string { return s.Alerts[i].Name }))

	db := func(nm string) *Database {
		for _, d := range s.Databases {
			if d.Name == nm {
				return d
			}
		}
		return nil
	}
	// References.
	for i, svc := range s.Services {
		sn := items(root, "services")[i]
		p := fmt.Sprintf("services[%d]", i)
		for j, d := range svc.Databases {
			if db(d) == nil {
				bad(field(sn, "databases").Content[j], fmt.Sprintf("%s.databases[%d]", p, j), "unknown-database", "database %q is not declared under databases", d)
			}
		}
		for j, w := range svc.Writes {
			dn, table, _ := strings.Cut(w, ".")
			wn := field(sn, "writes").Content[j]
			d := db(dn)
			switch {
			case d == nil:
				bad(wn, fmt.Sprintf("%s.writes[%d]", p, j), "unknown-database", "database %q of %q is not declared under databases", dn, w)
			case len(d.Tables) > 0 && !contains(d.Tables, table):
				bad(wn, fmt.Sprintf("%s.writes[%d]", p, j), "unknown-table", "table %q is not among database %q's tables", table, dn)
			}
		}
		for j, in := range svc.Integrations {
			inn := items(sn, "integrations")[j]
			ip := fmt.Sprintf("%s.integrations[%d]", p, j)
			if in.To != "" {
				switch {
				case s.Service(in.To) == nil:
					bad(field(inn, "to"), ip+".to", "unknown-service", "service %q is not declared under services", in.To)
				case in.To == svc.Name:
					bad(field(inn, "to"), ip+".to", "self-call", "service %q calls itself", in.To)
				}
			}
			if in.Topic != "" && s.Topic(in.Topic) == nil {
				bad(field(inn, "topic"), ip+".topic", "unknown-topic", "topic %q is not declared under topics", in.Topic)
			}
			if c := in.Contract; c != nil {
				cn := field(inn, "contract")
				for _, x := range []struct{ key, v string }{{"consumer", c.Consumer}, {"provider", c.Provider}} {
					if s.Service(x.v) == nil {
						bad(field(cn, x.key), ip+".contract."+x.key, "unknown-service", "service %q is not declared under services", x.v)
					}
				}
				if want := expectedPair(svc.Name, in); want != nil && (want.Consumer != "" && want.Consumer != c.Consumer || want.Provider != "" && want.Provider != c.Provider) {
					bad(cn, ip+".contract", "contract-pair", "the contract of this integration is between consumer %s and provider %s, not %s and %s", orAny(want.Consumer), orAny(want.Provider), c.Consumer, c.Provider)
				}
			}
		}
	}
	for i, d := range s.DeadLetters {
		n := items(root, "deadLetters")[i]
		p := fmt.Sprintf("deadLetters[%d]", i)
		for j, sv := range d.Services {
			if s.Service(sv) == nil {
				bad(field(n, "services").Content[j], fmt.Sprintf("%s.services[%d]", p, j), "unknown-service", "service %q is not declared under services", sv)
			}
		}
		if d.Database != "" && db(d.Database) == nil {
			bad(field(n, "database"), p+".database", "unknown-database", "database %q is not declared under databases", d.Database)
		}
		if d.Alert != "" && s.Alert(d.Alert) == nil {
			bad(field(n, "alert"), p+".alert", "unknown-alert", "alert route %q is not declared under alerts", d.Alert)
		}
	}
	return s, errs
}

// expectedPair is the contract pair an integration's direction implies: the
// caller or the consumer of a topic is the contract's consumer; the callee or
// the publisher its provider. An empty name is not implied.
func expectedPair(service string, in *Integration) *ContractPair {
	switch {
	case in.Kind == Sync || in.Direction == Call:
		return &ContractPair{Consumer: service, Provider: in.To}
	case in.Direction == Publish:
		return &ContractPair{Provider: service}
	case in.Direction == Consume:
		return &ContractPair{Consumer: service}
	}
	return nil
}

func orAny(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
