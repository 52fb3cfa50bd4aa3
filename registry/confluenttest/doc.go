// Package confluenttest proves that Confluent's own Go client works against
// handoff's schema registry unchanged.
//
// It is a separate module so that confluent-kafka-go and its dependencies
// never enter handoff's go.mod. Its tests start registry.Server in-process
// (httptest) over SQLite, and over PostgreSQL when one is reachable
// (HANDOFF_TEST_POSTGRES, default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; skipped when
// unreachable unless HANDOFF_TEST_REQUIRE=1), and drive it with:
//
//   - schemaregistry.Client: registering Avro, JSON Schema and Protobuf,
//     look-ups by id, by schema and by version, subjects and versions,
//     compatibility checks and levels, soft and permanent deletes,
//     references, metadata and rule sets, and the error codes the client
//     surfaces as *rest.Error;
//   - Confluent's serializers (serde/avrov2, serde/jsonschema,
//     serde/protobuf) writing bytes that registry.Deserializer reads, and
//     registry.Serializer writing bytes that Confluent's deserializers read.
//
// The serde tests need cgo: Confluent's serde packages import its kafka
// package (for kafka.Header), which binds the librdkafka bundled in the
// module. They carry the cgo build constraint, so CGO_ENABLED=0 go test
// still runs the client tests, which import only the pure-Go
// schemaregistry package.
//
// Run: cd registry/confluenttest && go test ./...
package confluenttest
