-- The contract broker (contract/broker). Pacticipants have versions;
-- versions have branches and tags; a pact's content is stored once per
-- (consumer, provider, sha) and each consumer version publishes one
-- content per provider; verification results belong to a content and a
-- provider version; deployments and releases place versions in
-- environments (ended_at is NULL while current). Names are compared byte
-- for byte.
CREATE TABLE IF NOT EXISTS handoff_contract_pacticipants (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    name        VARBINARY(255) NOT NULL UNIQUE,
    main_branch VARBINARY(255) NOT NULL DEFAULT '',
    created_at  DATETIME(6) NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_versions (
    id             BIGINT AUTO_INCREMENT PRIMARY KEY,
    pacticipant_id BIGINT NOT NULL,
    number         VARBINARY(255) NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    UNIQUE (pacticipant_id, number)
);

CREATE TABLE IF NOT EXISTS handoff_contract_branches (
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    branch         VARBINARY(255) NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    PRIMARY KEY (version_id, branch)
);
CREATE INDEX IF NOT EXISTS handoff_contract_branches_name ON handoff_contract_branches (pacticipant_id, branch, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_tags (
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    tag            VARBINARY(255) NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    PRIMARY KEY (version_id, tag)
);
CREATE INDEX IF NOT EXISTS handoff_contract_tags_name ON handoff_contract_tags (pacticipant_id, tag, version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_contents (
    id          BIGINT AUTO_INCREMENT PRIMARY KEY,
    consumer_id BIGINT NOT NULL,
    provider_id BIGINT NOT NULL,
    sha         VARBINARY(255) NOT NULL,
    content     LONGTEXT NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    UNIQUE (consumer_id, provider_id, sha)
);

CREATE TABLE IF NOT EXISTS handoff_contract_publications (
    id                  BIGINT AUTO_INCREMENT PRIMARY KEY,
    consumer_version_id BIGINT NOT NULL,
    consumer_id         BIGINT NOT NULL,
    provider_id         BIGINT NOT NULL,
    content_id          BIGINT NOT NULL,
    created_at          DATETIME(6) NOT NULL,
    UNIQUE (consumer_version_id, provider_id)
);
CREATE INDEX IF NOT EXISTS handoff_contract_publications_provider ON handoff_contract_publications (provider_id, consumer_id, consumer_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_verifications (
    id                  BIGINT AUTO_INCREMENT PRIMARY KEY,
    content_id          BIGINT NOT NULL,
    provider_version_id BIGINT NOT NULL,
    success             BOOLEAN NOT NULL,
    pending             BOOLEAN NOT NULL,
    build_url           VARCHAR(2048) NOT NULL,
    body                LONGTEXT NOT NULL,
    created_at          DATETIME(6) NOT NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_content ON handoff_contract_verifications (content_id, provider_version_id);
CREATE INDEX IF NOT EXISTS handoff_contract_verifications_provider ON handoff_contract_verifications (provider_version_id);

CREATE TABLE IF NOT EXISTS handoff_contract_environments (
    id           VARCHAR(36) PRIMARY KEY,
    name         VARBINARY(255) NOT NULL UNIQUE,
    display_name VARCHAR(2048) NOT NULL,
    production   BOOLEAN NOT NULL,
    created_at   DATETIME(6) NOT NULL
);

CREATE TABLE IF NOT EXISTS handoff_contract_deployments (
    id             VARCHAR(36) PRIMARY KEY,
    version_id     BIGINT NOT NULL,
    pacticipant_id BIGINT NOT NULL,
    environment_id VARCHAR(36) NOT NULL,
    instance       VARBINARY(255) NOT NULL,
    released       BOOLEAN NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    ended_at       DATETIME(6) NULL
);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_env ON handoff_contract_deployments (environment_id, pacticipant_id, ended_at);
CREATE INDEX IF NOT EXISTS handoff_contract_deployments_version ON handoff_contract_deployments (version_id, ended_at);
