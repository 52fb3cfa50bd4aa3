package confluenttest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/rest"

	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

// format is one schema language with a first schema, a schema compatible
// with it under BACKWARD and one incompatible with it.
type format struct {
	name       string
	schemaType string // as Confluent's SchemaInfo spells it ("" is AVRO)
	v1, v2     string
	bad        string
}

var formats = []format{
	{
		name: "avro",
		v1:   `{"type":"record","name":"Order","namespace":"com.example","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"}]}`,
		v2:   `{"type":"record","name":"Order","namespace":"com.example","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"note","type":"string","default":""}]}`,
		// A new field without a default: a reader of this schema cannot read v1 data.
		bad: `{"type":"record","name":"Order","namespace":"com.example","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double"},{"name":"qty","type":"int"}]}`,
	},
	{
		name:       "json",
		schemaType: "JSON",
		// Closed content models: adding an optional property to an open one
		// is incompatible (old data may carry it with any value).
		v1: `{"type":"object","properties":{"id":{"type":"string"},"amount":{"type":"number"}},"required":["id"],"additionalProperties":false}`,
		v2: `{"type":"object","properties":{"id":{"type":"string"},"amount":{"type":"number"},"note":{"type":"string"}},"required":["id"],"additionalProperties":false}`,
		// A property's type changed.
		bad: `{"type":"object","properties":{"id":{"type":"integer"},"amount":{"type":"number"}},"required":["id"],"additionalProperties":false}`,
	},
	{
		name:       "protobuf",
		schemaType: "PROTOBUF",
		v1:         "syntax = \"proto3\";\npackage com.example;\n\nmessage Order {\n  string id = 1;\n  double amount = 2;\n}\n",
		v2:         "syntax = \"proto3\";\npackage com.example;\n\nmessage Order {\n  string id = 1;\n  double amount = 2;\n  string note = 3;\n}\n",
		// A field's scalar kind changed.
		bad: "syntax = \"proto3\";\npackage com.example;\n\nmessage Order {\n  int32 id = 1;\n  double amount = 2;\n}\n",
	},
}

func (f format) info(text string) schemaregistry.SchemaInfo {
	return schemaregistry.SchemaInfo{Schema: text, SchemaType: f.schemaType}
}

func TestConfluentClient_RegisterAndLookUp(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				subject := f.name + "-orders-value"
				id, err := e.sr.Register(subject, f.info(f.v1), false)
				check(t, err)
				if id < 1 {
					t.Fatalf("Register: id %d", id)
				}

				// A second client (no cache) registering the same schema gets the same id.
				other := confluentClient(t, schemaregistry.NewConfig(e.url))
				if again, err := other.Register(subject, f.info(f.v1), false); err != nil || again != id {
					t.Fatalf("Register again: id %d, %v; want %d", again, err, id)
				}

				for _, sub := range []string{subject, ""} {
					got, err := other.GetBySubjectAndID(sub, id)
					check(t, err)
					if got.Schema != f.v1 || got.SchemaType != f.schemaType || len(got.References) != 0 {
						t.Errorf("GetBySubjectAndID(%q, %d) = %+v, want the registered schema", sub, id, got)
					}
				}

				if got, err := other.GetID(subject, f.info(f.v1), false); err != nil || got != id {
					t.Errorf("GetID = %d, %v; want %d", got, err, id)
				}
				full, err := other.GetIDFullResponse(subject, f.info(f.v1), false)
				check(t, err)
				if full.ID != id || full.Version != 1 || full.Subject != subject {
					t.Errorf("GetIDFullResponse = %+v, want id %d version 1 of %s", full, id, subject)
				}
				if v, err := other.GetVersion(subject, f.info(f.v1), false); err != nil || v != 1 {
					t.Errorf("GetVersion = %d, %v; want 1", v, err)
				}

				id2, err := e.sr.Register(subject, f.info(f.v2), false)
				check(t, err)
				if id2 == id {
					t.Fatalf("v2 got v1's id %d", id)
				}

				latest, err := other.GetLatestSchemaMetadata(subject)
				check(t, err)
				if latest.ID != id2 || latest.Version != 2 || latest.Subject != subject || latest.Schema != f.v2 || latest.SchemaType != f.schemaType {
					t.Errorf("GetLatestSchemaMetadata = %+v, want v2 (id %d)", latest, id2)
				}
				first, err := other.GetSchemaMetadata(subject, 1)
				check(t, err)
				if first.ID != id || first.Version != 1 || first.Schema != f.v1 {
					t.Errorf("GetSchemaMetadata(1) = %+v, want v1 (id %d)", first, id)
				}
				if vs, err := other.GetAllVersions(subject); err != nil || !slices.Equal(vs, []int{1, 2}) {
					t.Errorf("GetAllVersions = %v, %v; want [1 2]", vs, err)
				}
				svs, err := other.GetSubjectsAndVersionsByID(id2)
				check(t, err)
				if want := []schemaregistry.SubjectAndVersion{{Subject: subject, Version: 2}}; !reflect.DeepEqual(svs, want) {
					t.Errorf("GetSubjectsAndVersionsByID = %+v, want %+v", svs, want)
				}
				subs, err := other.GetAllSubjects()
				check(t, err)
				if !slices.Contains(subs, subject) {
					t.Errorf("GetAllSubjects = %v, want it to hold %s", subs, subject)
				}
			})
		}
	})
}

func TestConfluentClient_SameSchemaUnderTwoSubjectsHasOneID(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		a, err := e.sr.Register("a-value", f.info(f.v1), false)
		check(t, err)
		b, err := e.sr.Register("b-value", f.info(f.v1), false)
		check(t, err)
		if a != b {
			t.Fatalf("ids %d and %d, want one id for one schema", a, b)
		}
		svs, err := e.sr.GetSubjectsAndVersionsByID(a)
		check(t, err)
		want := []schemaregistry.SubjectAndVersion{{Subject: "a-value", Version: 1}, {Subject: "b-value", Version: 1}}
		if !reflect.DeepEqual(svs, want) {
			t.Errorf("GetSubjectsAndVersionsByID = %+v, want %+v", svs, want)
		}
	})
}

func TestConfluentClient_TestCompatibility(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				subject := f.name + "-compat-value"
				_, err := e.sr.Register(subject, f.info(f.v1), false)
				check(t, err)
				for _, c := range []struct {
					what string
					text string
					want bool
				}{{"v2", f.v2, true}, {"bad", f.bad, false}} {
					// Against version 1, "latest" (-1), and all versions.
					for _, version := range []int{1, -1} {
						ok, err := e.sr.TestCompatibility(subject, version, f.info(c.text))
						check(t, err)
						if ok != c.want {
							t.Errorf("TestCompatibility(%s, version %d) = %v, want %v", c.what, version, ok, c.want)
						}
					}
					ok, err := e.sr.TestSubjectCompatibility(subject, f.info(c.text))
					check(t, err)
					if ok != c.want {
						t.Errorf("TestSubjectCompatibility(%s) = %v, want %v", c.what, ok, c.want)
					}
				}
				_, err = e.sr.Register(subject, f.info(f.bad), false)
				wantCode(t, err, registry.CodeIncompatibleSchema)
				_, err = e.sr.Register(subject, f.info(f.v2), false)
				check(t, err)
			})
		}
	})
}

func TestConfluentClient_CompatibilityLevels(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		if got, err := e.sr.GetDefaultCompatibility(); err != nil || got != schemaregistry.Backward {
			t.Fatalf("GetDefaultCompatibility = %v, %v; want BACKWARD", got.String(), err)
		}
		_, err := e.sr.GetCompatibility("orders-value")
		wantCode(t, err, registry.CodeSubjectCompatibilityNotSet)
		cfg, err := e.sr.GetConfig("orders-value", true)
		check(t, err)
		if cfg.CompatibilityLevel != schemaregistry.Backward {
			t.Errorf("GetConfig(defaultToGlobal) = %v, want BACKWARD", cfg.CompatibilityLevel.String())
		}

		got, err := e.sr.UpdateCompatibility("orders-value", schemaregistry.None)
		check(t, err)
		if got != schemaregistry.None {
			t.Errorf("UpdateCompatibility = %v, want NONE", got.String())
		}
		if got, err := e.sr.GetCompatibility("orders-value"); err != nil || got != schemaregistry.None {
			t.Errorf("GetCompatibility = %v, %v; want NONE", got.String(), err)
		}
		// At NONE the incompatible schema registers.
		_, err = e.sr.Register("orders-value", f.info(f.v1), false)
		check(t, err)
		_, err = e.sr.Register("orders-value", f.info(f.bad), false)
		check(t, err)

		got, err = e.sr.UpdateDefaultCompatibility(schemaregistry.FullTransitive)
		check(t, err)
		if got != schemaregistry.FullTransitive {
			t.Errorf("UpdateDefaultCompatibility = %v, want FULL_TRANSITIVE", got.String())
		}
		if got, err := e.sr.GetDefaultCompatibility(); err != nil || got != schemaregistry.FullTransitive {
			t.Errorf("GetDefaultCompatibility = %v, %v; want FULL_TRANSITIVE", got.String(), err)
		}
		cfg, err = e.sr.GetConfig("other-value", true)
		check(t, err)
		if cfg.CompatibilityLevel != schemaregistry.FullTransitive {
			t.Errorf("GetConfig(other, defaultToGlobal) = %v, want FULL_TRANSITIVE", cfg.CompatibilityLevel.String())
		}
		// The subject's own level still wins.
		if got, err := e.sr.GetCompatibility("orders-value"); err != nil || got != schemaregistry.None {
			t.Errorf("GetCompatibility after a global change = %v, %v; want NONE", got.String(), err)
		}

		upd, err := e.sr.UpdateConfig("orders-value", schemaregistry.ServerConfig{CompatibilityUpdate: schemaregistry.Forward})
		check(t, err)
		if upd.CompatibilityUpdate != schemaregistry.Forward {
			t.Errorf("UpdateConfig = %+v, want compatibility FORWARD", upd)
		}
		def, err := e.sr.GetDefaultConfig()
		check(t, err)
		if def.CompatibilityLevel != schemaregistry.FullTransitive {
			t.Errorf("GetDefaultConfig = %v, want FULL_TRANSITIVE", def.CompatibilityLevel.String())
		}
	})
}

func TestConfluentClient_ServerDefaultCompatibility(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		if got, err := e.sr.GetDefaultCompatibility(); err != nil || got != schemaregistry.Full {
			t.Fatalf("GetDefaultCompatibility = %v, %v; want FULL (WithDefaultCompatibility)", got.String(), err)
		}
	}, registry.WithDefaultCompatibility(schema.Full))
}

func TestConfluentClient_DeleteSubject(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		const subject = "orders-value"
		id, err := e.sr.Register(subject, f.info(f.v1), false)
		check(t, err)
		_, err = e.sr.Register(subject, f.info(f.v2), false)
		check(t, err)

		// Permanent first is refused: the subject was not soft-deleted.
		_, err = e.sr.DeleteSubject(subject, true)
		wantCode(t, err, registry.CodeSubjectNotSoftDeleted)

		deleted, err := e.sr.DeleteSubject(subject, false)
		check(t, err)
		if !slices.Equal(deleted, []int{1, 2}) {
			t.Errorf("DeleteSubject(soft) = %v, want [1 2]", deleted)
		}
		subs, err := e.sr.GetAllSubjects()
		check(t, err)
		if slices.Contains(subs, subject) {
			t.Errorf("GetAllSubjects after a soft delete = %v, want it without %s", subs, subject)
		}
		_, err = e.sr.GetAllVersions(subject)
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.GetSchemaMetadata(subject, 1)
		wantCode(t, err, registry.CodeSubjectNotFound)
		// Soft-deleted versions stay readable with deleted=true, and the id stays.
		md, err := e.sr.GetSchemaMetadataIncludeDeleted(subject, 1, true)
		check(t, err)
		if md.ID != id || md.Version != 1 {
			t.Errorf("GetSchemaMetadataIncludeDeleted = %+v, want id %d version 1", md, id)
		}
		if v, err := e.sr.GetVersionIncludeDeleted(subject, f.info(f.v1), false, true); err != nil || v != 1 {
			t.Errorf("GetVersionIncludeDeleted = %d, %v; want 1", v, err)
		}
		info, err := confluentClient(t, schemaregistry.NewConfig(e.url)).GetBySubjectAndID("", id)
		check(t, err)
		if info.Schema != f.v1 {
			t.Errorf("GetBySubjectAndID after a soft delete = %+v", info)
		}
		_, err = e.sr.DeleteSubject(subject, false)
		wantCode(t, err, registry.CodeSubjectSoftDeleted)

		deleted, err = e.sr.DeleteSubject(subject, true)
		check(t, err)
		if !slices.Equal(deleted, []int{1, 2}) {
			t.Errorf("DeleteSubject(permanent) = %v, want [1 2]", deleted)
		}
		_, err = e.sr.GetSchemaMetadataIncludeDeleted(subject, 1, true)
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.DeleteSubject(subject, false)
		wantCode(t, err, registry.CodeSubjectNotFound)

		// The subject starts again at version 1.
		_, err = e.sr.Register(subject, f.info(f.bad), false)
		check(t, err)
		if vs, err := e.sr.GetAllVersions(subject); err != nil || !slices.Equal(vs, []int{1}) {
			t.Errorf("GetAllVersions after re-registering = %v, %v; want [1]", vs, err)
		}
	})
}

func TestConfluentClient_DeleteSubjectVersion(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		const subject = "orders-value"
		_, err := e.sr.Register(subject, f.info(f.v1), false)
		check(t, err)
		_, err = e.sr.Register(subject, f.info(f.v2), false)
		check(t, err)

		_, err = e.sr.DeleteSubjectVersion(subject, 2, true)
		wantCode(t, err, registry.CodeSchemaVersionNotSoftDeleted)
		v, err := e.sr.DeleteSubjectVersion(subject, 2, false)
		check(t, err)
		if v != 2 {
			t.Errorf("DeleteSubjectVersion(soft) = %d, want 2", v)
		}
		if vs, err := e.sr.GetAllVersions(subject); err != nil || !slices.Equal(vs, []int{1}) {
			t.Errorf("GetAllVersions = %v, %v; want [1]", vs, err)
		}
		latest, err := confluentClient(t, schemaregistry.NewConfig(e.url)).GetLatestSchemaMetadata(subject)
		check(t, err)
		if latest.Version != 1 {
			t.Errorf("latest after deleting version 2 = %+v, want version 1", latest)
		}
		_, err = e.sr.GetSchemaMetadata(subject, 2)
		wantCode(t, err, registry.CodeVersionNotFound)
		_, err = e.sr.DeleteSubjectVersion(subject, 2, false)
		wantCode(t, err, registry.CodeSchemaVersionSoftDeleted)

		v, err = e.sr.DeleteSubjectVersion(subject, 2, true)
		check(t, err)
		if v != 2 {
			t.Errorf("DeleteSubjectVersion(permanent) = %d, want 2", v)
		}
		_, err = e.sr.GetSchemaMetadataIncludeDeleted(subject, 2, true)
		wantCode(t, err, registry.CodeVersionNotFound)
		_, err = e.sr.DeleteSubjectVersion(subject, 7, false)
		wantCode(t, err, registry.CodeVersionNotFound)

		// A permanently deleted version number is free again (as in
		// Confluent's registry); a soft-deleted one is not. A fresh client:
		// Confluent's caches (subject, schema) → id, so it would not send
		// the request.
		_, err = confluentClient(t, schemaregistry.NewConfig(e.url)).Register(subject, f.info(f.v2), false)
		check(t, err)
		if vs, err := e.sr.GetAllVersions(subject); err != nil || !slices.Equal(vs, []int{1, 2}) {
			t.Errorf("GetAllVersions after re-registering a permanently deleted version = %v, %v; want [1 2]", vs, err)
		}
		_, err = e.sr.DeleteSubjectVersion(subject, 2, false)
		check(t, err)
		_, err = confluentClient(t, schemaregistry.NewConfig(e.url)).Register(subject, f.info(f.v2), false)
		check(t, err)
		if vs, err := e.sr.GetAllVersions(subject); err != nil || !slices.Equal(vs, []int{1, 3}) {
			t.Errorf("GetAllVersions after re-registering a soft-deleted version = %v, %v; want [1 3]", vs, err)
		}
	})
}

// referenceCases are, per format, a referenced Address schema and a
// Customer schema that uses it under the reference name.
var referenceCases = []struct {
	format
	name              string // the reference's name
	address, customer string
}{
	{
		format:   formats[0],
		name:     "com.example.Address",
		address:  `{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"street","type":"string"},{"name":"city","type":"string"}]}`,
		customer: `{"type":"record","name":"Customer","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"address","type":"com.example.Address"}]}`,
	},
	{
		format:   formats[1],
		name:     "address.json",
		address:  `{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}},"required":["street","city"]}`,
		customer: `{"type":"object","properties":{"name":{"type":"string"},"address":{"$ref":"address.json"}},"required":["name","address"]}`,
	},
	{
		format:   formats[2],
		name:     "address.proto",
		address:  "syntax = \"proto3\";\npackage com.example;\n\nmessage Address {\n  string street = 1;\n  string city = 2;\n}\n",
		customer: "syntax = \"proto3\";\npackage com.example;\n\nimport \"address.proto\";\n\nmessage Customer {\n  string name = 1;\n  Address address = 2;\n}\n",
	},
}

func TestConfluentClient_References(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		for _, c := range referenceCases {
			t.Run(c.format.name, func(t *testing.T) {
				addrSubject, custSubject := c.format.name+"-address", c.format.name+"-customer-value"
				_, err := e.sr.Register(addrSubject, c.info(c.address), false)
				check(t, err)
				refs := []schemaregistry.Reference{{Name: c.name, Subject: addrSubject, Version: 1}}
				cust := c.info(c.customer)
				cust.References = refs
				id, err := e.sr.Register(custSubject, cust, false)
				check(t, err)

				other := confluentClient(t, schemaregistry.NewConfig(e.url))
				md, err := other.GetSchemaMetadata(custSubject, 1)
				check(t, err)
				if md.ID != id || !reflect.DeepEqual(md.References, refs) {
					t.Errorf("GetSchemaMetadata = %+v, want id %d with references %+v", md, id, refs)
				}
				info, err := other.GetBySubjectAndID(custSubject, id)
				check(t, err)
				if info.Schema != c.customer || !reflect.DeepEqual(info.References, refs) {
					t.Errorf("GetBySubjectAndID = %+v, want the customer schema with references %+v", info, refs)
				}
				if got, err := other.GetID(custSubject, cust, false); err != nil || got != id {
					t.Errorf("GetID with references = %d, %v; want %d", got, err, id)
				}
				// Without its reference the schema does not parse.
				_, err = e.sr.Register(c.format.name+"-orphan-value", c.info(c.customer), false)
				wantCode(t, err, registry.CodeInvalidSchema)

				// A referenced version cannot be deleted while used.
				_, err = e.sr.DeleteSubjectVersion(addrSubject, 1, false)
				wantCode(t, err, registry.CodeReferenceExists)
				_, err = e.sr.DeleteSubject(addrSubject, false)
				wantCode(t, err, registry.CodeReferenceExists)
			})
		}
	})
}

func TestConfluentClient_MetadataAndRuleSetRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		info := f.info(f.v1)
		info.Metadata = &schemaregistry.Metadata{
			Tags:       map[string][]string{"com.example.Order.id": {"PII"}},
			Properties: map[string]string{"owner": "team-orders", "email": "orders@example.com"},
			Sensitive:  []string{"email"},
		}
		info.RuleSet = &schemaregistry.RuleSet{
			DomainRules: []schemaregistry.Rule{{
				Name: "checkAmount", Kind: "CONDITION", Mode: "WRITE", Type: "CEL",
				Expr: "message.amount >= 0.0", OnFailure: "ERROR", Params: map[string]string{"k": "v"},
			}},
			MigrationRules: []schemaregistry.Rule{{Name: "up", Kind: "TRANSFORM", Mode: "UPGRADE", Type: "JSONATA", Expr: "$", Disabled: true}},
		}
		id, err := e.sr.Register("orders-value", info, false)
		check(t, err)

		other := confluentClient(t, schemaregistry.NewConfig(e.url))
		md, err := other.GetLatestSchemaMetadata("orders-value")
		check(t, err)
		if !reflect.DeepEqual(md.Metadata, info.Metadata) || !reflect.DeepEqual(md.RuleSet, info.RuleSet) {
			t.Errorf("GetLatestSchemaMetadata: metadata %+v rules %+v, want %+v %+v", md.Metadata, md.RuleSet, info.Metadata, info.RuleSet)
		}
		byID, err := other.GetBySubjectAndID("orders-value", id)
		check(t, err)
		if !reflect.DeepEqual(byID.Metadata, info.Metadata) || !reflect.DeepEqual(byID.RuleSet, info.RuleSet) {
			t.Errorf("GetBySubjectAndID: metadata %+v rules %+v, want %+v %+v", byID.Metadata, byID.RuleSet, info.Metadata, info.RuleSet)
		}
		if got, err := other.GetID("orders-value", info, false); err != nil || got != id {
			t.Errorf("GetID with metadata and rules = %d, %v; want %d", got, err, id)
		}
		// The same text without metadata inherits the latest version's
		// (Confluent 7.4+): the same schema, the same id.
		plain := f.info(f.v1)
		if got, err := e.sr.Register("orders-value", plain, false); err != nil || got != id {
			t.Errorf("the bare schema registered as %d, %v; want %d (metadata inherited)", got, err, id)
		}
		// The same text with other metadata is another schema.
		changed := f.info(f.v1)
		changed.Metadata = &schemaregistry.Metadata{Properties: map[string]string{"owner": "team-billing"}}
		pid, err := e.sr.Register("orders-value", changed, false)
		check(t, err)
		if pid == id {
			t.Errorf("the schema with other metadata got the id %d of the first", id)
		}
		// handoff's client reads the same fields back.
		r, err := e.ours.Latest(t.Context(), "orders-value")
		check(t, err)
		if r.ID != pid {
			t.Errorf("handoff client: latest id %d, want %d", r.ID, pid)
		}
		r, err = e.ours.Version(t.Context(), "orders-value", 1)
		check(t, err)
		var gotMD schemaregistry.Metadata
		check(t, json.Unmarshal(r.Metadata, &gotMD))
		if !reflect.DeepEqual(&gotMD, info.Metadata) {
			t.Errorf("handoff client: metadata %s, want %+v", r.Metadata, info.Metadata)
		}
	})
}

func TestConfluentClient_ErrorCodes(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		f := formats[0]
		_, err := e.sr.GetLatestSchemaMetadata("nope-value")
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.GetAllVersions("nope-value")
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.GetSchemaMetadata("nope-value", 1)
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.GetID("nope-value", f.info(f.v1), false)
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = e.sr.GetBySubjectAndID("", 4242)
		wantCode(t, err, registry.CodeSchemaNotFound)
		_, err = e.sr.GetSubjectsAndVersionsByID(4242)
		wantCode(t, err, registry.CodeSchemaNotFound)

		_, err = e.sr.Register("orders-value", f.info(f.v1), false)
		check(t, err)
		_, err = e.sr.GetSchemaMetadata("orders-value", 9)
		wantCode(t, err, registry.CodeVersionNotFound)
		_, err = e.sr.GetSchemaMetadata("orders-value", 0)
		wantCode(t, err, registry.CodeInvalidVersion)
		_, err = e.sr.GetID("orders-value", f.info(f.v2), false)
		wantCode(t, err, registry.CodeSchemaNotFound)
		_, err = e.sr.TestCompatibility("orders-value", 9, f.info(f.v2))
		wantCode(t, err, registry.CodeVersionNotFound)
		_, err = e.sr.Register("orders-value", f.info(f.bad), false)
		wantCode(t, err, registry.CodeIncompatibleSchema)
		_, err = e.sr.Register("orders-value", f.info(`{"type":"record","name":"Broken"`), false)
		wantCode(t, err, registry.CodeInvalidSchema)
		_, err = e.sr.Register("orders-value", schemaregistry.SchemaInfo{Schema: f.v1, SchemaType: "XML"}, false)
		wantCode(t, err, registry.CodeInvalidSchema)
		_, err = e.sr.GetCompatibility("orders-value")
		wantCode(t, err, registry.CodeSubjectCompatibilityNotSet)
	})
}

func TestConfluentClient_Auth(t *testing.T) {
	const token = "s3cret-token"
	f := formats[0]
	eachStore(t, func(t *testing.T, e *env) {
		// e.sr sends no credentials.
		_, err := e.sr.Register("orders-value", f.info(f.v1), false)
		wantCode(t, err, registry.CodeUnauthorized)
		_, err = e.sr.GetAllSubjects()
		wantCode(t, err, registry.CodeUnauthorized)

		// basic.auth.user.info with the token as the password (what a
		// Confluent Cloud API key and secret look like to a client).
		conf := schemaregistry.NewConfigWithBasicAuthentication(e.url, "any-user", token)
		authed := confluentClient(t, conf)
		id, err := authed.Register("orders-value", f.info(f.v1), false)
		check(t, err)
		if md, err := authed.GetLatestSchemaMetadata("orders-value"); err != nil || md.ID != id {
			t.Errorf("GetLatestSchemaMetadata with credentials = %+v, %v", md, err)
		}

		wrong := confluentClient(t, schemaregistry.NewConfigWithBasicAuthentication(e.url, "any-user", "wrong"))
		_, err = wrong.GetAllSubjects()
		wantCode(t, err, registry.CodeUnauthorized)
	}, registry.WithRequiredToken(token))

	t.Run("open reads", func(t *testing.T) {
		e := newEnv(t, sqliteStore(t), registry.WithRequiredToken(token), registry.WithOpenReads(true))
		_, err := e.sr.Register("orders-value", f.info(f.v1), false)
		wantCode(t, err, registry.CodeUnauthorized)
		_, err = confluentClient(t, schemaregistry.NewConfigWithBasicAuthentication(e.url, "u", token)).Register("orders-value", f.info(f.v1), false)
		check(t, err)
		if subs, err := e.sr.GetAllSubjects(); err != nil || !slices.Equal(subs, []string{"orders-value"}) {
			t.Errorf("GetAllSubjects without credentials on open reads = %v, %v", subs, err)
		}
		// A compatibility check is a read.
		if ok, err := e.sr.TestCompatibility("orders-value", -1, f.info(f.v2)); err != nil || !ok {
			t.Errorf("TestCompatibility without credentials on open reads = %v, %v", ok, err)
		}
	})
}

func TestConfluentClient_Contexts(t *testing.T) {
	e := newEnv(t, sqliteStore(t))
	got, err := e.sr.GetAllContexts()
	check(t, err)
	if !slices.Equal(got, []string{"."}) {
		t.Errorf("GetAllContexts = %v, want [.]", got)
	}
}

// Endpoints of newer Confluent registries that the client has and
// handoff's server does not (yet) answer. Each test skips, naming the
// request, while the server answers 404 with error_code 404 (no route).
func TestConfluentClient_LatestWithMetadata(t *testing.T) {
	e := newEnv(t, sqliteStore(t))
	f := formats[0]
	info := f.info(f.v1)
	info.Metadata = &schemaregistry.Metadata{Properties: map[string]string{"app": "orders"}}
	id, err := e.sr.Register("orders-value", info, false)
	check(t, err)
	md, err := e.sr.GetLatestWithMetadata("orders-value", map[string]string{"app": "orders"}, false)
	skipIfNoRoute(t, err, "GET /subjects/orders-value/metadata?deleted=false&key=app&value=orders (GetLatestWithMetadata; serde UseLatestWithMetadata) answers 404/404; Confluent answers the latest version whose metadata.properties hold every key=value")
	check(t, err)
	if md.ID != id {
		t.Errorf("GetLatestWithMetadata = %+v, want id %d", md, id)
	}
}

func TestConfluentClient_GetByGUID(t *testing.T) {
	e := newEnv(t, sqliteStore(t))
	f := formats[0]
	md, err := e.sr.RegisterFullResponse("orders-value", f.info(f.v1), false)
	check(t, err)
	if md.GUID == "" {
		t.Skip("server gap: POST /subjects/{s}/versions answers only {\"id\":N}; Confluent Platform 8 also answers \"guid\" (and the rest of the schema), which GetByGUID and the V1 magic byte (GUID in a header) need. Not needed for the default wire format.")
	}
	info, err := e.sr.GetByGUID(md.GUID)
	skipIfNoRoute(t, err, "GET /schemas/guids/{guid}")
	check(t, err)
	if info.Schema != f.v1 {
		t.Errorf("GetByGUID = %+v", info)
	}
}

// skipIfNoRoute skips when err is the server's answer to an unknown route.
func skipIfNoRoute(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		return
	}
	var re *rest.Error
	if errors.As(err, &re) && re.Code == 404 {
		t.Skip("server gap: " + what)
	}
}
