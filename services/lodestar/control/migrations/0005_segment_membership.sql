-- Segment membership read model and backfill progress (issue 4), written by the
-- engine: segment_members by the projection of lodestar.segment-membership (one
-- row per current member; an EXIT deletes the row), segment_backfill by the
-- workers evaluating a new segment version over the endpoints of their partitions.
--
-- Both reference segments ON DELETE CASCADE, so deleting a segment (or its
-- application) leaves no rows behind; the writers skip rows of segments that
-- no longer exist instead of failing (control/segment_membership.py).
--
-- The status queries select by (app_id, segment_id[, ...]), a prefix of each
-- primary key; members join endpoint_read_model on its key. A worker given a
-- partition asks which backfills finished there: segment_backfill_finished.
CREATE TABLE IF NOT EXISTS segment_members (
    app_id           text        NOT NULL,
    segment_id       text        NOT NULL,
    endpoint_id      text        NOT NULL,
    segment_version  integer     NOT NULL,
    entered_at       timestamptz NOT NULL,
    PRIMARY KEY (app_id, segment_id, endpoint_id),
    FOREIGN KEY (app_id, segment_id) REFERENCES segments (app_id, id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS segment_backfill (
    app_id           text        NOT NULL,
    segment_id       text        NOT NULL,
    segment_version  integer     NOT NULL,
    partition        integer     NOT NULL CHECK (partition >= 0),
    evaluated        bigint      NOT NULL CHECK (evaluated >= 0),
    total            bigint      NOT NULL CHECK (total >= 0),
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz NULL,
    PRIMARY KEY (app_id, segment_id, segment_version, partition),
    FOREIGN KEY (app_id, segment_id) REFERENCES segments (app_id, id) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS segment_backfill_finished
    ON segment_backfill (partition) WHERE finished_at IS NOT NULL;
