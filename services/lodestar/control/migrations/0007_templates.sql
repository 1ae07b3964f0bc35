-- Message templates (issue 5): account-wide, one row per (type, name), one row per
-- version. Versions run 1, 2, 3, … and are never reused: a new version takes the row
-- lock on templates and writes last_version + 1, even when higher versions were
-- deleted. active_version is the version GetXTemplate answers without `version` and
-- that sends use; it always names an existing version.
CREATE TABLE IF NOT EXISTS templates (
    template_type   text NOT NULL
                    CHECK (template_type IN ('EMAIL', 'SMS', 'PUSH', 'VOICE', 'INAPP')),
    name            text COLLATE "C" NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$'),
    last_version    integer NOT NULL CHECK (last_version >= 1),
    active_version  integer NOT NULL CHECK (active_version >= 1),
    tags            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_type, name)
);

CREATE INDEX IF NOT EXISTS templates_name ON templates (name, template_type);

CREATE TABLE IF NOT EXISTS template_versions (
    template_type   text NOT NULL,
    name            text COLLATE "C" NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    definition      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (template_type, name, version),
    FOREIGN KEY (template_type, name) REFERENCES templates (template_type, name)
        ON DELETE CASCADE
);
