-- Message lifecycle events from lodestar.deliveries: one row per delivery event
-- (send, delivered, bounce, open, click, _SMS.*, _campaign.send …).
-- ReplacingMergeTree on the event id: a batch replayed after a crash collapses;
-- exact counts read with FINAL or count distinct event ids / message ids.
CREATE TABLE IF NOT EXISTS deliveries
(
    app_id                LowCardinality(String),
    event_type            LowCardinality(String),
    channel               LowCardinality(String),
    event_date            Date MATERIALIZED toDate(event_time),
    event_time            DateTime64(3, 'UTC'),
    event_id              String,
    message_id            String,
    endpoint_id           String,
    user_id               String,
    campaign_id           String,
    treatment_id          String,
    campaign_activity_id  String,
    journey_id            String,
    journey_activity_id   String,
    journey_run_id        String,
    delivery_type         LowCardinality(String),
    record_status         LowCardinality(String),
    iso_country_code      LowCardinality(String),
    message_parts         UInt16,
    price_millicents_usd  Float64,
    attributes            Map(String, String),
    metrics               Map(String, Float64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (app_id, event_date, event_type, event_id);

-- Steps of endpoints through campaigns and journeys (lodestar.activity).
CREATE TABLE IF NOT EXISTS activity
(
    app_id            LowCardinality(String),
    source_type       LowCardinality(String),
    source_id         String,
    source_version    UInt32,
    run_id            String,
    activity_id       String,
    activity_type     LowCardinality(String),
    channel           LowCardinality(String),
    endpoint_id       String,
    user_id           String,
    treatment_id      String,
    outcome           LowCardinality(String),
    reason            LowCardinality(String),
    branch            String,
    next_activity_id  String,
    message_id        String,
    step_date         Date MATERIALIZED toDate(step_time),
    step_time         DateTime64(3, 'UTC'),
    step_id           String,
    attributes        Map(String, String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(step_time)
ORDER BY (app_id, source_type, source_id, step_date, step_id);

-- Segment enter/exit changes (lodestar.segment-membership).
CREATE TABLE IF NOT EXISTS segment_membership
(
    app_id           LowCardinality(String),
    segment_id       String,
    segment_version  UInt32,
    endpoint_id      String,
    user_id          String,
    change           LowCardinality(String),
    cause            LowCardinality(String),
    event_id         String,
    change_date      Date MATERIALIZED toDate(change_time),
    change_time      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(change_time)
ORDER BY (app_id, segment_id, change_date, endpoint_id, change_time, change);
