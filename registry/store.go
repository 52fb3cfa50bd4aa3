package registry

import "github.com/handoffhq/handoff/registry/registrystore"

// The storage contract lives in package registrystore, which imports only
// the standard library, so that the SQL stores in the adapters do not pull
// the schema engine into services that use the adapters for other stores.

// ErrStoreNotFound is returned by a Store for a schema id that does not exist.
var ErrStoreNotFound = registrystore.ErrNotFound

type (
	// StoredSchema is a schema as stored: once per distinct content (Hash),
	// under a global id.
	StoredSchema = registrystore.StoredSchema
	// VersionRow is one version of a subject.
	VersionRow = registrystore.VersionRow
	// Setting is one compatibility or mode setting; Subject "" is global.
	Setting = registrystore.Setting
	// Store keeps the registry's state. The SQL implementations (PostgreSQL,
	// SQLite, MySQL) are RegistryStore in adapter/postgres, adapter/sqlite
	// and adapter/mysql.
	Store = registrystore.Store
	// StoreTx is what Store.Update's function may do.
	StoreTx = registrystore.Tx
)

// Settings kinds.
const (
	settingCompatibility = "compatibility"
	settingMode          = "mode"
	settingRules         = "compatibilityRules" // handoff's extension: schema.Rules
)
