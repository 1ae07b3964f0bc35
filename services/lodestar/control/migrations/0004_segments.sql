-- Segments (issue 4): one row per segment, one row per version of its definition.
-- A segment's versions run 1, 2, 3, … and are never reused: an update takes the
-- row lock on segments and writes latest_version + 1; a deleted segment's id is
-- never handed out again (ids are 128 random bits).
CREATE TABLE IF NOT EXISTS segments (
    app_id          text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    id              text NOT NULL,
    name            text,
    segment_type    text NOT NULL DEFAULT 'DIMENSIONAL'
                    CHECK (segment_type IN ('DIMENSIONAL', 'IMPORT')),
    latest_version  integer NOT NULL CHECK (latest_version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    modified_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, id)
);

CREATE INDEX IF NOT EXISTS segments_app_created ON segments (app_id, created_at, id);

CREATE TABLE IF NOT EXISTS segment_versions (
    app_id          text NOT NULL,
    segment_id      text NOT NULL,
    version         integer NOT NULL CHECK (version >= 1),
    name            text,
    definition      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, segment_id, version),
    FOREIGN KEY (app_id, segment_id) REFERENCES segments (app_id, id) ON DELETE CASCADE
);
