-- The schema registry. A schema is stored once (by its hash) and gets a
-- global id; subjects hold numbered versions pointing at schema ids.
-- Subjects are VARBINARY: compared byte for byte, as in every other store
-- (a case-insensitive or space-padding collation would merge subjects).
CREATE TABLE IF NOT EXISTS handoff_registry_schemas (
    id          INT    AUTO_INCREMENT PRIMARY KEY,
    hash        VARCHAR(64) NOT NULL UNIQUE,
    guid        VARCHAR(36) NOT NULL,
    schema_type TEXT   NOT NULL,
    schema_text LONGTEXT   NOT NULL,
    refs        LONGTEXT NOT NULL,
    metadata    LONGTEXT   NULL,
    rule_set    LONGTEXT   NULL
);

CREATE TABLE IF NOT EXISTS handoff_registry_versions (
    subject   VARBINARY(255)    NOT NULL,
    version   INT     NOT NULL,
    schema_id INT     NOT NULL,
    deleted   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS handoff_registry_versions_schema ON handoff_registry_versions (schema_id);
-- The GUID is derived from the hash, so it is unique as the hash is; a
-- unique index here would make concurrent inserts of one schema fail
-- instead of waiting on the hash.
CREATE INDEX IF NOT EXISTS handoff_registry_schemas_guid ON handoff_registry_schemas (guid);

-- Which (subject, version) each schema references.
CREATE TABLE IF NOT EXISTS handoff_registry_refs (
    schema_id   INT  NOT NULL,
    ref_subject VARBINARY(255) NOT NULL,
    ref_version INT  NOT NULL,
    PRIMARY KEY (schema_id, ref_subject, ref_version)
);
CREATE INDEX IF NOT EXISTS handoff_registry_refs_target ON handoff_registry_refs (ref_subject, ref_version);

-- Compatibility and mode, globally (subject '') and per subject.
CREATE TABLE IF NOT EXISTS handoff_registry_settings (
    kind    VARCHAR(32) NOT NULL,
    subject VARBINARY(255) NOT NULL,
    value   VARCHAR(64) NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- One row per subject ever written: writers lock it, so a subject's
-- registrations and deletions happen one after another.
CREATE TABLE IF NOT EXISTS handoff_registry_subjects (
    subject VARBINARY(255) PRIMARY KEY,
    writes  BIGINT NOT NULL DEFAULT 1
);
