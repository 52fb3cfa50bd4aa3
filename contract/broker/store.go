package broker

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store for a row that does not exist.
var ErrNotFound = errors.New("broker: not found")

// ErrConflict is returned by a Store for a unique name already taken.
var ErrConflict = errors.New("broker: conflict")

// Pacticipant is an application that is a consumer, a provider or both.
type Pacticipant struct {
	ID         int64
	Name       string
	MainBranch string
	CreatedAt  time.Time
}

// Version is a version of a pacticipant, with its branches and tags.
type Version struct {
	ID            int64
	PacticipantID int64
	Number        string
	CreatedAt     time.Time
	Branches      []string
	Tags          []string
}

// Content is a pact's JSON, stored once per (consumer, provider, sha).
type Content struct {
	ID         int64
	ConsumerID int64
	ProviderID int64
	SHA        string
	JSON       []byte
	CreatedAt  time.Time
}

// Publication is the pact a consumer version published for a provider.
type Publication struct {
	ID                int64
	ConsumerVersionID int64
	ProviderID        int64
	ContentID         int64
	CreatedAt         time.Time

	// Filled by Publications.
	ConsumerID      int64
	ConsumerName    string
	ConsumerVersion string
	ProviderName    string
	SHA             string
}

// Verification is a provider version's verification result of a pact
// content.
type Verification struct {
	ID                int64
	ContentID         int64
	ProviderVersionID int64
	Success           bool
	Pending           bool // the pact was pending for the provider version when verified
	BuildURL          string
	Body              []byte // the published result as sent
	CreatedAt         time.Time

	ProviderVersion string // filled by Verifications
}

// Environment is a place pacticipants are deployed or released to.
type Environment struct {
	ID          string // a UUID
	Name        string
	DisplayName string
	Production  bool
	CreatedAt   time.Time
}

// Deployment records a version deployed (or released) to an environment.
// A deployment ends when another version of the pacticipant is deployed
// to the same environment and application instance; a release stays
// supported until recorded otherwise.
type Deployment struct {
	ID            string
	VersionID     int64
	PacticipantID int64
	EnvironmentID string
	Instance      string
	Released      bool
	CreatedAt     time.Time
	EndedAt       time.Time // zero while current

	Version         string // filled by Deployments
	PacticipantName string
}

// PublicationQuery selects publications; zero fields do not filter.
type PublicationQuery struct {
	ConsumerVersionID int64
	ProviderID        int64
	ConsumerID        int64
	Branch            string // consumer version on this branch
	Tag               string // consumer version with this tag
	MainBranch        bool   // consumer version on its pacticipant's main branch
	// DeployedIn selects consumer versions currently deployed or released
	// to the environment with this ID ("*" for any environment).
	DeployedIn string
	Deployed   bool // with DeployedIn: deployed ones only
	Released   bool // with DeployedIn: released ones only
}

// VerificationQuery selects verifications; zero fields do not filter.
type VerificationQuery struct {
	ContentIDs         []int64
	ProviderVersionIDs []int64
	SuccessOnly        bool
}

// DeploymentQuery selects current deployments and releases.
type DeploymentQuery struct {
	EnvironmentID  string
	PacticipantID  int64
	PacticipantIDs []int64 // any of these pacticipants
	VersionID      int64
}

// Reader is what the broker reads.
type Reader interface {
	Pacticipant(ctx context.Context, name string) (Pacticipant, error)
	Pacticipants(ctx context.Context) ([]Pacticipant, error)
	// Version returns a version with its branches and tags.
	Version(ctx context.Context, pacticipantID int64, number string) (Version, error)
	// Versions returns a pacticipant's versions, newest first, on the
	// branch and with the tag when those are not empty, at most limit.
	Versions(ctx context.Context, pacticipantID int64, branch, tag string, limit int) ([]Version, error)
	// VersionsByID returns versions with their branches and tags.
	VersionsByID(ctx context.Context, ids []int64) ([]Version, error)
	// BranchCreated returns when the first version of the pacticipant was
	// put on the branch.
	BranchCreated(ctx context.Context, pacticipantID int64, branch string) (time.Time, bool, error)
	Environment(ctx context.Context, idOrName string) (Environment, error)
	Environments(ctx context.Context) ([]Environment, error)
	Content(ctx context.Context, id int64) (Content, error)
	ContentBySHA(ctx context.Context, consumerID, providerID int64, sha string) (Content, error)
	// Publications returns publications ordered by consumer name, then
	// newest consumer version first.
	Publications(ctx context.Context, q PublicationQuery) ([]Publication, error)
	// Verifications returns verifications oldest first.
	Verifications(ctx context.Context, q VerificationQuery) ([]Verification, error)
	// Deployments returns current (not ended) deployments and releases.
	Deployments(ctx context.Context, q DeploymentQuery) ([]Deployment, error)
}

// Tx is what a Store.Update function may do.
type Tx interface {
	Reader
	EnsurePacticipant(ctx context.Context, name string) (Pacticipant, error)
	SetMainBranch(ctx context.Context, pacticipantID int64, branch string) error
	EnsureVersion(ctx context.Context, pacticipantID int64, number string) (Version, error)
	AddBranch(ctx context.Context, versionID int64, branch string) error
	AddTag(ctx context.Context, versionID int64, tag string) error
	EnsureContent(ctx context.Context, c Content) (Content, error)
	// PutPublication stores or replaces the pact of a consumer version for
	// a provider.
	PutPublication(ctx context.Context, consumerVersionID, providerID, contentID int64) (Publication, error)
	AddVerification(ctx context.Context, v Verification) (Verification, error)
	// CreateEnvironment fails with ErrConflict for a name already taken.
	CreateEnvironment(ctx context.Context, e Environment) error
	AddDeployment(ctx context.Context, d Deployment) error
	// EndDeployments ends the current deployments (not releases) of the
	// pacticipant in the environment for the application instance.
	EndDeployments(ctx context.Context, pacticipantID int64, environmentID, instance string, at time.Time) error
}

// Store keeps the broker's state. The SQL implementations (PostgreSQL,
// SQLite, MySQL/MariaDB) are in adapter/postgres, adapter/sqlite and
// adapter/mysql; adapter/memory has one in memory.
type Store interface {
	Reader
	// Update runs fn in one transaction.
	Update(ctx context.Context, fn func(Tx) error) error
}
