-- Events as published on lodestar.events, one row per (app, endpoint, event id).
-- ReplacingMergeTree on the full sort key: a batch replayed after a crash
-- collapses into the rows already stored; queries that need exact counts
-- read with FINAL until issue #6's rollups replace them.
CREATE TABLE IF NOT EXISTS events
(
    app_id            LowCardinality(String),
    event_type        LowCardinality(String),
    event_date        Date MATERIALIZED toDate(event_time),
    event_time        DateTime64(3, 'UTC'),
    arrival_time      DateTime64(3, 'UTC'),
    endpoint_id       String,
    event_id          String,
    session_id        String,
    attributes        Map(String, String),
    metrics           Map(String, Float64),
    app_version_code  LowCardinality(String),
    sdk_name          LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (app_id, event_type, event_date, endpoint_id, event_id)
