// Package registry is a schema registry compatible with Confluent's REST
// API and wire format, and its client.
//
// The server (NewServer) stores subjects, versions and schemas on
// PostgreSQL or SQLite (or in memory), checks every registration with the
// schema package's compatibility engine, and explains a refusal: each
// violation with its rule, path, direction and a hint. Existing Confluent
// clients and serializers work against it unchanged.
//
// The client (NewClient) caches id → schema and schema → id, and the
// serializers write and read Confluent's wire format: a zero magic byte, the
// 4-byte big-endian schema id, then the payload (Avro binary, JSON, or
// Protobuf with its message indexes).
package registry
