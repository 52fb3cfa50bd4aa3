-- The schema registry. A schema is stored once (by its hash) and gets a
-- global id; subjects hold numbered versions pointing at schema ids.
CREATE TABLE IF NOT EXISTS handoff_registry_schemas (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        TEXT   NOT NULL UNIQUE,
    guid        TEXT NOT NULL,
    schema_type TEXT   NOT NULL,
    schema_text TEXT   NOT NULL,
    refs        TEXT   NOT NULL DEFAULT '[]',
    metadata    TEXT   NULL,
    rule_set    TEXT   NULL
);

CREATE TABLE IF NOT EXISTS handoff_registry_versions (
    subject   TEXT    NOT NULL,
    version   INTEGER     NOT NULL,
    schema_id INTEGER     NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, version)
);
CREATE INDEX IF NOT EXISTS handoff_registry_versions_schema ON handoff_registry_versions (schema_id);
-- The GUID is derived from the hash, so it is unique as the hash is; a
-- unique index here would make concurrent inserts of one schema fail
-- instead of waiting on the hash.
CREATE INDEX IF NOT EXISTS handoff_registry_schemas_guid ON handoff_registry_schemas (guid);

-- Which (subject, version) each schema references.
CREATE TABLE IF NOT EXISTS handoff_registry_refs (
    schema_id   INTEGER  NOT NULL,
    ref_subject TEXT NOT NULL,
    ref_version INTEGER  NOT NULL,
    PRIMARY KEY (schema_id, ref_subject, ref_version)
);
CREATE INDEX IF NOT EXISTS handoff_registry_refs_target ON handoff_registry_refs (ref_subject, ref_version);

-- Compatibility and mode, globally (subject '') and per subject.
CREATE TABLE IF NOT EXISTS handoff_registry_settings (
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- One row per subject ever written: writers lock it, so a subject's
-- registrations and deletions happen one after another.
CREATE TABLE IF NOT EXISTS handoff_registry_subjects (
    subject TEXT   PRIMARY KEY,
    writes  INTEGER NOT NULL DEFAULT 1
);
