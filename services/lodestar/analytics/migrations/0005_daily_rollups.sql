-- Daily rollups for the KPIs (analytics/kpis.py reads them for ranges of whole
-- UTC days). One row per day and KPI dimension holds the distinct-id sets of
-- every KPI measure as uniqExact states of 64-bit CityHashes: merging a state
-- twice changes nothing, so a batch replayed after a crash (written twice
-- through the view) is still counted once. The conditions mirror the measures
-- of analytics/kpis.py; tests/analytics/test_kpis_known_truth.py checks both
-- paths against the same answers. SMS parts and prices are dimensions, so a sum
-- of parts (prices) is the sum over each value of value × its distinct messages. Each rollup's SELECT is written twice: as
-- the view ``<rollup>_source`` (backfill, and the rebuild after an endpoint's
-- erasure, analytics/erasure.py) and as the materialized view that rolls up
-- every insert; keep them identical.
CREATE TABLE IF NOT EXISTS deliveries_daily
(
    app_id                LowCardinality(String),
    event_date            Date,
    campaign_id           String,
    campaign_activity_id  String,
    journey_id            String,
    journey_activity_id   String,
    iso_country_code      LowCardinality(String),
    record_status         LowCardinality(String),
    message_parts         UInt16,
    price_millicents_usd  Float64,
    attempted             AggregateFunction(uniqExact, UInt64),
    delivered             AggregateFunction(uniqExact, UInt64),
    unique_deliveries     AggregateFunction(uniqExact, UInt64),
    email_sent            AggregateFunction(uniqExact, UInt64),
    email_delivered       AggregateFunction(uniqExact, UInt64),
    email_opened          AggregateFunction(uniqExact, UInt64),
    email_openers         AggregateFunction(uniqExact, UInt64),
    email_clicks          AggregateFunction(uniqExact, UInt64),
    email_clickers        AggregateFunction(uniqExact, UInt64),
    email_hard_bounced    AggregateFunction(uniqExact, UInt64),
    email_soft_bounced    AggregateFunction(uniqExact, UInt64),
    email_complained      AggregateFunction(uniqExact, UInt64),
    email_rejected        AggregateFunction(uniqExact, UInt64),
    email_unsubscribes    AggregateFunction(uniqExact, UInt64),
    push_delivered        AggregateFunction(uniqExact, UInt64),
    sms_sent              AggregateFunction(uniqExact, UInt64),
    sms_delivered         AggregateFunction(uniqExact, UInt64),
    sms_failures          AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (app_id, event_date, campaign_id, campaign_activity_id, journey_id,
          journey_activity_id, iso_country_code, record_status, message_parts,
          price_millicents_usd);

CREATE VIEW IF NOT EXISTS deliveries_daily_source AS
SELECT
    app_id,
    event_date,
    campaign_id, campaign_activity_id, journey_id, journey_activity_id, iso_country_code,
    record_status, message_parts, price_millicents_usd,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.send', '_SMS.SUCCESS',
        '_SMS.FAILURE', '_SMS.BUFFERED', '_campaign.send', '_journey.send', '_push.success',
        '_push.failure', '_voice.success', '_voice.failure', '_custom.success',
        '_custom.failure')) AS attempted,
    uniqExactStateIf(cityHash64(message_id), is_delivered) AS delivered,
    uniqExactStateIf(cityHash64(endpoint_id), is_delivered AND endpoint_id != '')
        AS unique_deliveries,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.send') AS email_sent,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.delivered') AS email_delivered,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.open') AS email_opened,
    uniqExactStateIf(cityHash64(recipient), event_type = '_email.open') AS email_openers,
    uniqExactStateIf(cityHash64(event_id), event_type = '_email.click') AS email_clicks,
    uniqExactStateIf(cityHash64(recipient), event_type = '_email.click') AS email_clickers,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.hardbounce')
        AS email_hard_bounced,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.softbounce')
        AS email_soft_bounced,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.complaint') AS email_complained,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.rejected') AS email_rejected,
    uniqExactStateIf(cityHash64(event_id), event_type = '_email.unsubscribe')
        AS email_unsubscribes,
    uniqExactStateIf(cityHash64(endpoint_id, campaign_activity_id), is_delivered
        AND channel = 'PUSH') AS push_delivered,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_SMS.SUCCESS', '_SMS.FAILURE',
        '_SMS.BUFFERED')) AS sms_sent,
    uniqExactStateIf(cityHash64(message_id), event_type = '_SMS.SUCCESS') AS sms_delivered,
    uniqExactStateIf(cityHash64(event_id), event_type = '_SMS.FAILURE') AS sms_failures
FROM
(
    SELECT *, event_date,
        if(endpoint_id != '', endpoint_id, message_id) AS recipient,
        event_type IN ('_email.delivered', '_SMS.SUCCESS', '_push.success', '_voice.success',
            '_custom.success')
        OR (event_type IN ('_campaign.send', '_journey.send') AND channel NOT IN ('EMAIL', 'SMS')
            AND if(attributes['campaign_send_status'] != '', attributes['campaign_send_status'],
                   attributes['journey_send_status']) = 'SUCCESSFUL') AS is_delivered
    FROM deliveries
)
GROUP BY app_id, event_date, campaign_id, campaign_activity_id, journey_id,
         journey_activity_id, iso_country_code, record_status, message_parts,
         price_millicents_usd;

CREATE MATERIALIZED VIEW IF NOT EXISTS deliveries_daily_mv TO deliveries_daily AS
SELECT
    app_id,
    event_date,
    campaign_id, campaign_activity_id, journey_id, journey_activity_id, iso_country_code,
    record_status, message_parts, price_millicents_usd,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.send', '_SMS.SUCCESS',
        '_SMS.FAILURE', '_SMS.BUFFERED', '_campaign.send', '_journey.send', '_push.success',
        '_push.failure', '_voice.success', '_voice.failure', '_custom.success',
        '_custom.failure')) AS attempted,
    uniqExactStateIf(cityHash64(message_id), is_delivered) AS delivered,
    uniqExactStateIf(cityHash64(endpoint_id), is_delivered AND endpoint_id != '')
        AS unique_deliveries,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.send') AS email_sent,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.delivered') AS email_delivered,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.open') AS email_opened,
    uniqExactStateIf(cityHash64(recipient), event_type = '_email.open') AS email_openers,
    uniqExactStateIf(cityHash64(event_id), event_type = '_email.click') AS email_clicks,
    uniqExactStateIf(cityHash64(recipient), event_type = '_email.click') AS email_clickers,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.hardbounce')
        AS email_hard_bounced,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.softbounce')
        AS email_soft_bounced,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.complaint') AS email_complained,
    uniqExactStateIf(cityHash64(message_id), event_type = '_email.rejected') AS email_rejected,
    uniqExactStateIf(cityHash64(event_id), event_type = '_email.unsubscribe')
        AS email_unsubscribes,
    uniqExactStateIf(cityHash64(endpoint_id, campaign_activity_id), is_delivered
        AND channel = 'PUSH') AS push_delivered,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_SMS.SUCCESS', '_SMS.FAILURE',
        '_SMS.BUFFERED')) AS sms_sent,
    uniqExactStateIf(cityHash64(message_id), event_type = '_SMS.SUCCESS') AS sms_delivered,
    uniqExactStateIf(cityHash64(event_id), event_type = '_SMS.FAILURE') AS sms_failures
FROM
(
    SELECT *, event_date,
        if(endpoint_id != '', endpoint_id, message_id) AS recipient,
        event_type IN ('_email.delivered', '_SMS.SUCCESS', '_push.success', '_voice.success',
            '_custom.success')
        OR (event_type IN ('_campaign.send', '_journey.send') AND channel NOT IN ('EMAIL', 'SMS')
            AND if(attributes['campaign_send_status'] != '', attributes['campaign_send_status'],
                   attributes['journey_send_status']) = 'SUCCESSFUL') AS is_delivered
    FROM deliveries
)
GROUP BY app_id, event_date, campaign_id, campaign_activity_id, journey_id,
         journey_activity_id, iso_country_code, record_status, message_parts,
         price_millicents_usd;

CREATE TABLE IF NOT EXISTS events_daily
(
    app_id                LowCardinality(String),
    event_date            Date,
    campaign_id           String,
    campaign_activity_id  String,
    push_opened           AggregateFunction(uniqExact, UInt64),
    push_opens            AggregateFunction(uniqExact, UInt64),
    active_endpoints      AggregateFunction(uniqExact, UInt64),
    active_users          AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (app_id, event_date, campaign_id, campaign_activity_id);

CREATE VIEW IF NOT EXISTS events_daily_source AS
SELECT
    app_id,
    event_date,
    attributes['campaign_id'] AS campaign_id,
    attributes['campaign_activity_id'] AS campaign_activity_id,
    uniqExactStateIf(cityHash64(endpoint_id, attributes['campaign_activity_id']),
        event_type = '_campaign.opened_notification') AS push_opened,
    uniqExactStateIf(cityHash64(event_id), event_type = '_campaign.opened_notification')
        AS push_opens,
    uniqExactState(cityHash64(endpoint_id)) AS active_endpoints,
    uniqExactStateIf(cityHash64(user_id), user_id != '') AS active_users
FROM events
GROUP BY app_id, event_date, campaign_id, campaign_activity_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS events_daily_mv TO events_daily AS
SELECT
    app_id,
    event_date,
    attributes['campaign_id'] AS campaign_id,
    attributes['campaign_activity_id'] AS campaign_activity_id,
    uniqExactStateIf(cityHash64(endpoint_id, attributes['campaign_activity_id']),
        event_type = '_campaign.opened_notification') AS push_opened,
    uniqExactStateIf(cityHash64(event_id), event_type = '_campaign.opened_notification')
        AS push_opens,
    uniqExactState(cityHash64(endpoint_id)) AS active_endpoints,
    uniqExactStateIf(cityHash64(user_id), user_id != '') AS active_users
FROM events
GROUP BY app_id, event_date, campaign_id, campaign_activity_id;

INSERT INTO deliveries_daily SELECT * FROM deliveries_daily_source;

INSERT INTO events_daily SELECT * FROM events_daily_source
