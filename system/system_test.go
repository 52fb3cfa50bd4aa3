package system_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/system"
)

func TestStarter_Parses(t *testing.T) {
	s, err := system.Parse("handoff.yaml", system.Starter())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 3 || s.Service("order") == nil || s.Topic("order.placed") == nil {
		t.Fatalf("starter: %+v", s)
	}
	order := s.Service("order")
	if order.Availability != 0.999 || order.Latency != 80*time.Millisecond || order.Line == 0 {
		t.Fatalf("order: %+v", order)
	}
	if in := order.Integrations[0]; in.Kind != system.Sync || in.Direction != system.Call || in.To != "payment" || in.Contract == nil || in.Contract.Provider != "payment" {
		t.Fatalf("order's first integration: %+v", in)
	}
	if a := s.Alert("first-dead-letter"); a == nil || a.Within != 5*time.Minute {
		t.Fatalf("alert: %+v", a)
	}
	// Every comment line of the starter survives: it is the documentation.
	if n := strings.Count(string(system.Starter()), "\n#"); n < 3 {
		t.Fatalf("starter has %d top-level comment lines", n)
	}
}

func TestSample_Parses(t *testing.T) {
	s, err := system.Load(filepath.Join("testdata", "sample", "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 6 || len(s.Topics) != 2 || len(s.DeadLetters) != 1 {
		t.Fatalf("sample: %d services, %d topics", len(s.Services), len(s.Topics))
	}
	var sync, async int
	s.Integrations(func(_ *system.Service, in *system.Integration) {
		switch in.Kind {
		case system.Sync:
			sync++
		case system.Async:
			async++
		}
	})
	if sync != 5 || async != 3 {
		t.Fatalf("sync %d, async %d", sync, async)
	}
}

// base is a valid file the table below breaks one line at a time.
const base = `version: 1
system: t
services:
  - name: a
    owner: team-a
    availability: 0.999
    databases: [db1]
    writes: [db1.t1]
    integrations:
      - kind: sync
        protocol: http
        to: b
        contract: {consumer: a, provider: b}
      - kind: async
        protocol: nats
        direction: publish
        topic: t1
  - name: b
    owner: team-b
topics:
  - name: t1
databases:
  - name: db1
    tables: [t1]
deadLetters:
  - name: dl
    services: [a, b]
    alert: al
alerts:
  - name: al
    on: dead-letter
    within: 5m
    route: slack:#ops
`

func TestParse_Base(t *testing.T) {
	if _, err := system.Parse("", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

func TestParse_ErrorsNameLineAndRule(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, new  string // replace old with new in base
		line      int
		rule      string
		path, msg string
	}{
		{"availability above 1", "availability: 0.999", "availability: 1.5", 6, "maximum", "services[0].availability", "1.5"},
		{"availability a string", "availability: 0.999", "availability: high", 6, "type", "services[0].availability", "string"},
		{"unknown key", "    owner: team-b\n", "    owner: team-b\n    ownr: x\n", 20, "additionalProperties", "services[1]", "ownr"},
		{"owner missing", "    owner: team-b\n", "", 18, "required", "services[1]", "owner"},
		{"kind not an enum value", "kind: sync", "kind: rpc", 10, "enum", "services[0].integrations[0].kind", "sync"},
		{"sync without to", "        to: b\n", "", 10, "required", "services[0].integrations[0]", "to"},
		{"sync over nats", "protocol: http", "protocol: nats", 11, "enum", "services[0].integrations[0].protocol", "http"},
		{"async without direction", "        direction: publish\n", "", 14, "required", "services[0].integrations[1]", "direction"},
		{"bad version", "version: 1", "version: 2", 1, "const", "version", "1"},
		{"bad duration", "within: 5m", "within: soon", 32, "pattern", "alerts[0].within", "soon"},
		{"unknown service", "to: b", "to: c", 12, "unknown-service", "services[0].integrations[0].to", `"c"`},
		{"self call", "to: b\n        contract: {consumer: a, provider: b}", "to: a", 12, "self-call", "services[0].integrations[0].to", `"a"`},
		{"unknown topic", "topic: t1", "topic: t2", 17, "unknown-topic", "services[0].integrations[1].topic", `"t2"`},
		{"unknown database", "databases: [db1]", "databases: [db2]", 7, "unknown-database", "services[0].databases[0]", `"db2"`},
		{"unknown table", "writes: [db1.t1]", "writes: [db1.t9]", 8, "unknown-table", "services[0].writes[0]", `"t9"`},
		{"contract pair reversed", "{consumer: a, provider: b}", "{consumer: b, provider: a}", 13, "contract-pair", "services[0].integrations[0].contract", "consumer a and provider b"},
		{"duplicate service", "  - name: b\n", "  - name: a\n", 18, "unique", "services[1].name", "already declared"},
		{"duplicate key", "    owner: team-b\n", "    owner: team-b\n    owner: team-c\n", 20, "unique", "services[1].owner", "twice"},
		{"unknown alert", "alert: al", "alert: nope", 28, "unknown-alert", "deadLetters[0].alert", `"nope"`},
		{"dead letters of an unknown service", "services: [a, b]", "services: [a, x]", 27, "unknown-service", "deadLetters[0].services[1]", `"x"`},
		{"alias", "  - name: b\n    owner: team-b", "  - &b\n    name: b\n    owner: team-b\n  - *b", 18, "yaml", "services[1]", "aliases"},
		{"broken yaml", "    owner: team-b\n", "    owner: team-b\n      x: y\n", 20, "yaml", "", "mapping values"},
		{"second document", "route: slack:#ops\n", "route: slack:#ops\n---\nversion: 1\n", 34, "yaml", "", "second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("base has no %q", tc.old)
			}
			src := strings.Replace(base, tc.old, tc.new, 1)
			_, err := system.Parse("x.yaml", []byte(src))
			var errs system.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T), want system.Errors", err, err)
			}
			for _, e := range errs {
				if e.Rule == tc.rule && e.Line == tc.line && e.Path == tc.path && strings.Contains(e.Msg, tc.msg) {
					if !strings.HasPrefix(e.Error(), "x.yaml:") || !strings.Contains(e.Error(), "(rule "+tc.rule+")") {
						t.Fatalf("message %q names neither file nor rule", e.Error())
					}
					return
				}
			}
			t.Fatalf("want line %d rule %s path %q msg ~%q; got:\n%v", tc.line, tc.rule, tc.path, tc.msg, err)
		})
	}
}

func TestParse_Budget(t *testing.T) {
	deep := "version: 1\nsystem: x\nservices: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	_, err := system.Parse("", []byte(deep))
	if err == nil || !strings.Contains(err.Error(), "rule budget") {
		t.Fatalf("deep nesting: %v", err)
	}
	big := make([]byte, system.MaxSize+1)
	if _, err := system.Parse("", big); err == nil || !strings.Contains(err.Error(), "rule size") {
		t.Fatalf("oversize: %v", err)
	}
	if _, err := system.Parse("", nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty: %v", err)
	}
}

func TestSchema_IsJSONSchema(t *testing.T) {
	b, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(system.Schema) {
		t.Fatal("system.Schema is not schema.json")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(system.Starter())
	if b, err := os.ReadFile(filepath.Join("testdata", "sample", "handoff.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nsystem: x\nservices: [{name: a, owner: b, integrations: [{}]}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := system.Parse("f.yaml", b)
		if err != nil {
			var errs system.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %v is not system.Errors", err)
			}
			return
		}
		// What is accepted resolves: every name it uses is declared.
		s.Integrations(func(svc *system.Service, in *system.Integration) {
			if in.To != "" && s.Service(in.To) == nil {
				t.Fatalf("%s calls undeclared %q", svc.Name, in.To)
			}
			if in.Topic != "" && s.Topic(in.Topic) == nil {
				t.Fatalf("%s uses undeclared topic %q", svc.Name, in.Topic)
			}
		})
		if len(s.Services) == 0 || s.Version != 1 {
			t.Fatalf("accepted %+v", s)
		}
	})
}
