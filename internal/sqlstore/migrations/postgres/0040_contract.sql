-- The contract broker (contract/broker). Pacticipants have versions;
-- versions have branches and tags; a pact's content is stored once per
-- (consumer, provider, sha) and each consumer version publishes one
-- content per provider; verification results belong to a content and a
-- provider version; deployments and releases place versions in
-- environments (ended_at is NULL while current). Names are compared byte
-- for byte.
CREATE TABLE IF NOT EXISTS handoff_contract_pacticipants (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    main_branch TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_versions (
    id             BIGSERIAL PRIMARY KEY,
    pacticipant_id BIGINT NOT NULL,
    number         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (pacticipant_id, number)
);

CREATE TABLE IF NOT EXISTS handoff_contract_branches (
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    branch         TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (version_id, branch)
);
CREATE INDEX IF NOT EXISTS handoff_contract_branches_name ON handoff_contract_branches (pacticipant_id, branch, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_tags (
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    tag            TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (version_id, tag)
);
CREATE INDEX IF NOT EXISTS handoff_contract_tags_name ON handoff_contract_tags (pacticipant_id, tag, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_contents (
    id          BIGSERIAL PRIMARY KEY,
    consumer_id BIGINT NOT NULL,
    provider_id BIGINT NOT NULL,
    sha         TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (consumer_id, provider_id, sha)
);

CREATE TABLE IF NOT EXISTS handoff_contract_publications (
    id                  BIGSERIAL PRIMARY KEY,
    consumer_version_id BIGINT NOT NULL,
    consumer_id         BIGINT NOT NULL,
    provider_id         BIGINT NOT NULL,
    content_id          BIGINT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (consumer_version_id, provider_id)
);
CREATE INDEX IF NOT EXISTS handoff_contract_publications_provider ON handoff_contract_publications (provider_id, consumer_id, consumer_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_verifications (
    id                  BIGSERIAL PRIMARY KEY,
    content_id          BIGINT NOT NULL,
    provider_version_id BIGINT NOT NULL,
    success             BOOLEAN NOT NULL,
    pending             BOOLEAN NOT NULL,
    build_url           TEXT NOT NULL,
    body                TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_content ON handoff_contract_verifications (content_id, provider_version_id);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_provider ON handoff_contract_verifications (provider_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_environments (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    production   BOOLEAN NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_deployments (
    id             TEXT PRIMARY KEY,
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    environment_id TEXT NOT NULL,
    instance       TEXT NOT NULL,
    released       BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_env ON handoff_contract_deployments (environment_id, pacticipant_id, ended_at);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_version ON handoff_contract_deployments (version_id, ended_at);
