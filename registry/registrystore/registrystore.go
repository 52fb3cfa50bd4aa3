// Package registrystore is the storage contract of the schema registry: the
// [Store] interface and the rows it keeps. It imports only the standard
// library, so that the SQL stores (constructed by adapter/postgres,
// adapter/sqlite and adapter/mysql) do not pull the schema engine of package
// registry into every service that uses those adapters for its outbox or
// inbox. Package registry names each of these types as its own
// (registry.Store is registrystore.Store): use those names.
package registrystore

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrNotFound is returned by a Store for a schema id that does not exist.
var ErrNotFound = errors.New("registry: store: not found")

// Reference names another registered schema that a schema uses: Name is
// how the schema's text refers to it (a JSON Schema $ref URL, an Avro full
// type name, a Protobuf import path).
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// StoredSchema is a schema as stored: once per distinct content (Hash),
// under a global id.
type StoredSchema struct {
	ID         int
	Hash       string
	GUID       string // derived from Hash: the same schema has the same GUID everywhere
	Type       string // AVRO, JSON or PROTOBUF
	Text       string
	References []Reference
	Metadata   json.RawMessage
	RuleSet    json.RawMessage
}

// VersionRow is one version of a subject.
type VersionRow struct {
	Subject  string
	Version  int
	SchemaID int
	Deleted  bool // soft-deleted
}

// Setting is one compatibility or mode setting; Subject "" is global.
type Setting struct {
	Kind, Subject, Value string
}

// Store keeps the registry's state. The SQL implementations (PostgreSQL,
// SQLite, MySQL) are returned by RegistryStore of adapter/postgres,
// adapter/sqlite and adapter/mysql.
type Store interface {
	// Schema returns the schema with the id, or ErrNotFound.
	Schema(ctx context.Context, id int) (StoredSchema, error)
	// SchemaByGUID returns the schema with the GUID, or ErrNotFound.
	SchemaByGUID(ctx context.Context, guid string) (StoredSchema, error)
	// Subjects lists subjects in order: those with a live version, or with
	// any version when deleted is true.
	Subjects(ctx context.Context, deleted bool) ([]string, error)
	// Versions lists a subject's versions, soft-deleted ones included,
	// oldest first.
	Versions(ctx context.Context, subject string) ([]VersionRow, error)
	// SchemaVersions lists the versions, in any subject, that use the schema id.
	SchemaVersions(ctx context.Context, id int) ([]VersionRow, error)
	// ReferencedBy lists the ids of the schemas that reference the version.
	ReferencedBy(ctx context.Context, subject string, version int) ([]int, error)
	// Setting returns a setting of a subject ("" is the global one).
	Setting(ctx context.Context, kind, subject string) (value string, ok bool, err error)
	// Settings returns every setting of the subject and every global one,
	// in one read.
	Settings(ctx context.Context, subject string) ([]Setting, error)
	PutSetting(ctx context.Context, kind, subject, value string) error
	DeleteSetting(ctx context.Context, kind, subject string) error
	// Update runs fn in one transaction that holds the write locks of the
	// subjects, so a subject's writes happen one after another.
	Update(ctx context.Context, subjects []string, fn func(Tx) error) error
}

// Tx is what Store.Update's function may do.
type Tx interface {
	Versions(ctx context.Context, subject string) ([]VersionRow, error)
	Schema(ctx context.Context, id int) (StoredSchema, error)
	ReferencedBy(ctx context.Context, subject string, version int) ([]int, error)
	// InsertSchema stores s unless a schema with its Hash exists, and
	// returns the id of the stored one and whether it is s. A non-zero
	// s.ID (import mode) is used as the id.
	InsertSchema(ctx context.Context, s StoredSchema) (id int, inserted bool, err error)
	InsertVersion(ctx context.Context, subject string, version, schemaID int) error
	SoftDelete(ctx context.Context, subject string, version int) error
	// HardDelete removes the version, and the schema with its references
	// when no version uses it any more (orphaned is then its id, else 0).
	HardDelete(ctx context.Context, subject string, version int) (orphaned int, err error)
}
