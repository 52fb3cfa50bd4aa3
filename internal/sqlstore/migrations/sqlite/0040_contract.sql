-- The contract broker (contract/broker). Pacticipants have versions;
-- versions have branches and tags; a pact's content is stored once per
-- (consumer, provider, sha) and each consumer version publishes one
-- content per provider; verification results belong to a content and a
-- provider version; deployments and releases place versions in
-- environments (ended_at is NULL while current). Names are compared byte
-- for byte.
CREATE TABLE IF NOT EXISTS handoff_contract_pacticipants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    main_branch TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_versions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    pacticipant_id INTEGER NOT NULL,
    number         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (pacticipant_id, number)
);

CREATE TABLE IF NOT EXISTS handoff_contract_branches (
    version_id     INTEGER NOT NULL,
    pacticipant_id INTEGER NOT NULL,
    branch         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (version_id, branch)
);
CREATE INDEX IF NOT EXISTS handoff_contract_branches_name ON handoff_contract_branches (pacticipant_id, branch, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_tags (
    version_id     INTEGER NOT NULL,
    pacticipant_id INTEGER NOT NULL,
    tag            TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (version_id, tag)
);
CREATE INDEX IF NOT EXISTS handoff_contract_tags_name ON handoff_contract_tags (pacticipant_id, tag, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_contents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_id INTEGER NOT NULL,
    provider_id INTEGER NOT NULL,
    sha         TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (consumer_id, provider_id, sha)
);

CREATE TABLE IF NOT EXISTS handoff_contract_publications (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer_version_id INTEGER NOT NULL,
    consumer_id         INTEGER NOT NULL,
    provider_id         INTEGER NOT NULL,
    content_id          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    UNIQUE (consumer_version_id, provider_id)
);
CREATE INDEX IF NOT EXISTS handoff_contract_publications_provider ON handoff_contract_publications (provider_id, consumer_id, consumer_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_verifications (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    content_id          INTEGER NOT NULL,
    provider_version_id INTEGER NOT NULL,
    success             INTEGER NOT NULL,
    pending             INTEGER NOT NULL,
    build_url           TEXT NOT NULL,
    body                TEXT NOT NULL,
    created_at          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_content ON handoff_contract_verifications (content_id, provider_version_id);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_provider ON handoff_contract_verifications (provider_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_environments (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    production   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_deployments (
    id             TEXT PRIMARY KEY,
    version_id     INTEGER NOT NULL,
    pacticipant_id INTEGER NOT NULL,
    environment_id TEXT NOT NULL,
    instance       TEXT NOT NULL,
    released       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    ended_at       INTEGER NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_env ON handoff_contract_deployments (environment_id, pacticipant_id, ended_at);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_version ON handoff_contract_deployments (version_id, ended_at);
