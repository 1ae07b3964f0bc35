-- Daily rollups for the product analytics (analytics/product.py, issue #6's speed target).
-- As in 0005, each rollup's SELECT is written twice: as the view ``<rollup>_source``
-- (backfill, and the rebuild after an endpoint's erasure, analytics/erasure.py) and as the
-- materialized view that rolls up every insert; keep them identical. Both are safe under
-- replays: a row a replayed batch writes again adds nothing (a key already present, a hash
-- already in a uniqExact state).
--
-- events_active_daily: the endpoints (kind 'endpoint', every endpoint id, '' included)
-- and the non-empty user ids (kind 'user') with an event on the day, as 64-bit CityHashes
-- of the id: one row per key and day, for active-users (DAU/WAU/MAU) and retention.
CREATE TABLE IF NOT EXISTS events_active_daily
(
    app_id      LowCardinality(String),
    kind        Enum8('endpoint' = 1, 'user' = 2),
    event_date  Date,
    key_hash    UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (app_id, kind, event_date, key_hash);

CREATE VIEW IF NOT EXISTS events_active_daily_source AS
SELECT app_id, key.1 AS kind, event_date, key.2 AS key_hash
FROM events
ARRAY JOIN arrayFilter(k -> k.1 = 'endpoint' OR k.3,
    [tuple('endpoint', cityHash64(endpoint_id), true),
     tuple('user', cityHash64(user_id), user_id != '')]) AS key
GROUP BY app_id, kind, event_date, key_hash;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_active_daily_mv TO events_active_daily AS
SELECT app_id, key.1 AS kind, event_date, key.2 AS key_hash
FROM events
ARRAY JOIN arrayFilter(k -> k.1 = 'endpoint' OR k.3,
    [tuple('endpoint', cityHash64(endpoint_id), true),
     tuple('user', cityHash64(user_id), user_id != '')]) AS key
GROUP BY app_id, kind, event_date, key_hash;

-- events_types_daily: per day and event type, the events (uniqExact of the CityHash of
-- endpoint id and event id: the events table's own deduplication key within a day and
-- type, so it counts what ``count() … FINAL`` counts) and the endpoints (a
-- ``uniqCombined(14)`` state: exact for small sets, then within about 1 %, and cheap to
-- merge over the days), for top-events.
CREATE TABLE IF NOT EXISTS events_types_daily
(
    app_id      LowCardinality(String),
    event_date  Date,
    event_type  LowCardinality(String),
    events      AggregateFunction(uniqExact, UInt64),
    endpoints   AggregateFunction(uniqCombined(14), String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (app_id, event_date, event_type);

CREATE VIEW IF NOT EXISTS events_types_daily_source AS
SELECT app_id, event_date, event_type,
    uniqExactState(cityHash64(endpoint_id, event_id)) AS events,
    uniqCombinedState(14)(endpoint_id) AS endpoints
FROM events
GROUP BY app_id, event_date, event_type;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_types_daily_mv TO events_types_daily AS
SELECT app_id, event_date, event_type,
    uniqExactState(cityHash64(endpoint_id, event_id)) AS events,
    uniqCombinedState(14)(endpoint_id) AS endpoints
FROM events
GROUP BY app_id, event_date, event_type;

INSERT INTO events_active_daily SELECT * FROM events_active_daily_source;

INSERT INTO events_types_daily SELECT * FROM events_types_daily_source
