// Package registry is a schema registry compatible with Confluent's REST
// API and wire format, its client, serializers, and a validator for the
// outbox and the consumer.
//
// The server (NewServer over a Store from adapter/postgres, adapter/sqlite
// or adapter/mysql) keeps subjects, numbered versions and globally
// numbered schemas. Registering checks the new version with the schema
// package's engine at the subject's compatibility level, and a refusal (409)
// lists every violation with its rule, path, direction, version and a hint.
// Verdicts are Confluent's registry's by default, and a JSON Schema
// without $schema is read as draft-07, as there (WithDefaultJSONDraft
// changes that); handoff's stricter findings are listed as "warning:"
// lines in the messages of a verbose compatibility check.
//
// handoff extends the config API with one field, handoffCompatibilityRules,
// per subject and global like the level: CONFLUENT (the default) or
// STRICT, which refuses handoff's stricter findings too:
//
//	PUT /config/orders-value {"handoffCompatibilityRules": "STRICT"}
//	GET /config/orders-value → {"handoffCompatibilityRules": "STRICT"}
//
// A PUT may carry "compatibility", the rule set, or both; a field left out
// keeps its value, so Confluent's clients, which send only
// "compatibility", never reset it. DELETE /config[/{subject}] removes
// both. Confluent's clients ignore the field in GET answers. It is not
// Confluent's compatibilityPolicy, which handoff does not implement.
// Client.SetCompatibilityRules and Client.CompatibilityRules use it.
//
// Registering a schema again returns its id; the same schema under two
// subjects has one id. A version another schema references cannot be
// deleted. Every route needs the token given to WithRequiredToken (reads
// none with WithOpenReads); WithScopedToken gives tokens that may only
// read, or read and register, while admin tokens may also delete and
// change config and mode. Existing Confluent clients and serializers work
// against it unchanged (registry/confluenttest runs Confluent's Go client).
//
//	srv, _ := registry.NewServer(postgres.RegistryStore(db), registry.WithRequiredToken(token))
//	http.ListenAndServe(addr, srv)
//
// The client (NewClient) caches what never changes: id → schema, (subject,
// schema) → id and the parsed schema per id. Serializer and Deserializer
// write and read Confluent's wire format: a zero magic byte, the 4-byte
// big-endian schema id, then Avro binary, JSON, or Protobuf after its
// message indexes. SerializeEvent is the CloudEvents way: the data is left
// unframed and the event's dataschema names the schema
// (<registry>/schemas/ids/<id>).
//
// A Validator binds topics to subjects. Given to outbox.WithValidator, it
// refuses an event whose data breaks the schema before anything is written,
// with an error naming the failing path; wrapping a publisher
// (Validator.Publisher), it refuses such a batch before anything is
// published; given to consumer.WithValidator,
// it dead-letters such a message with class "schema" before its handler
// runs. A registry that cannot be reached is not a verdict: the consumer
// retries.
//
// The server caches schemas by id in memory (they never change); subjects,
// versions and settings are read from the database, so several instances
// can share one.
//
// Untrusted input gets a work budget: every schema parsed for a request
// runs under the request's context and WithLimits (schema.DefaultLimits:
// nesting, members/fields, references), in a bounded pool of parse slots
// (WithMaxParses; 429 with Retry-After when full). Every route checks its
// subject (UTF-8, no control characters, 1–255 bytes: 42208), and metadata
// and ruleSet shapes (42201): a client error is never a 5xx. SECURITY.md
// at the repository root has the defaults.
package registry
