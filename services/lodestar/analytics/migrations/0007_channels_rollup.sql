-- The channels page's daily rollup (analytics/dashboard_queries.py, issue #6's speed
-- target). Per day, channel, country and price: the messages at each stage as uniqExact
-- states of their id's 64-bit CityHash (the stage definitions of dashboard_queries.py;
-- tests/analytics/test_dashboard_queries.py checks the page against answers computed in
-- Python), and the priced events (uniqExact of the CityHash of event type and event id:
-- the table's deduplication key within a day) so spend is the sum over each price of the
-- price times its distinct events, which is what ``sum(price_millicents_usd)`` over
-- ``deliveries FINAL`` adds up. As in 0005, the SELECT is written twice: the view
-- ``deliveries_channels_daily_source`` (backfill, and the rebuild after an erasure,
-- analytics/erasure.py) and the materialized view; keep them identical.
CREATE TABLE IF NOT EXISTS deliveries_channels_daily
(
    app_id                LowCardinality(String),
    event_date            Date,
    channel               LowCardinality(String),
    iso_country_code      LowCardinality(String),
    price_millicents_usd  Float64,
    sent                  AggregateFunction(uniqExact, UInt64),
    delivered             AggregateFunction(uniqExact, UInt64),
    bounced               AggregateFunction(uniqExact, UInt64),
    complained            AggregateFunction(uniqExact, UInt64),
    opted_out             AggregateFunction(uniqExact, UInt64),
    priced_events         AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (app_id, event_date, channel, iso_country_code, price_millicents_usd);

CREATE VIEW IF NOT EXISTS deliveries_channels_daily_source AS
SELECT app_id, event_date, channel, iso_country_code, price_millicents_usd,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_campaign.send', '_journey.send',
        '_email.send', '_SMS.BUFFERED', '_SMS.SUCCESS', '_SMS.FAILURE', '_SMS.OPTOUT',
        '_push.success', '_push.failure', '_voice.success', '_voice.failure', '_custom.success',
        '_custom.failure')) AS sent,
    uniqExactStateIf(cityHash64(message_id), is_delivered) AS delivered,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.hardbounce',
        '_email.softbounce', '_SMS.FAILURE', '_push.failure', '_voice.failure',
        '_custom.failure')) AS bounced,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.complaint')) AS complained,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.unsubscribe',
        '_SMS.OPTOUT')) AS opted_out,
    uniqExactStateIf(cityHash64(event_type, event_id), price_millicents_usd != 0)
        AS priced_events
FROM
(
    SELECT *, event_date,
        event_type IN ('_email.delivered', '_SMS.SUCCESS', '_push.success', '_voice.success',
            '_custom.success')
        OR (event_type IN ('_campaign.send', '_journey.send') AND channel NOT IN ('EMAIL', 'SMS')
            AND (attributes['campaign_send_status'] = 'SUCCESSFUL'
                 OR attributes['journey_send_status'] = 'SUCCESSFUL')) AS is_delivered
    FROM deliveries
)
GROUP BY app_id, event_date, channel, iso_country_code, price_millicents_usd;

CREATE MATERIALIZED VIEW IF NOT EXISTS deliveries_channels_daily_mv
TO deliveries_channels_daily AS
SELECT app_id, event_date, channel, iso_country_code, price_millicents_usd,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_campaign.send', '_journey.send',
        '_email.send', '_SMS.BUFFERED', '_SMS.SUCCESS', '_SMS.FAILURE', '_SMS.OPTOUT',
        '_push.success', '_push.failure', '_voice.success', '_voice.failure', '_custom.success',
        '_custom.failure')) AS sent,
    uniqExactStateIf(cityHash64(message_id), is_delivered) AS delivered,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.hardbounce',
        '_email.softbounce', '_SMS.FAILURE', '_push.failure', '_voice.failure',
        '_custom.failure')) AS bounced,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.complaint')) AS complained,
    uniqExactStateIf(cityHash64(message_id), event_type IN ('_email.unsubscribe',
        '_SMS.OPTOUT')) AS opted_out,
    uniqExactStateIf(cityHash64(event_type, event_id), price_millicents_usd != 0)
        AS priced_events
FROM
(
    SELECT *, event_date,
        event_type IN ('_email.delivered', '_SMS.SUCCESS', '_push.success', '_voice.success',
            '_custom.success')
        OR (event_type IN ('_campaign.send', '_journey.send') AND channel NOT IN ('EMAIL', 'SMS')
            AND (attributes['campaign_send_status'] = 'SUCCESSFUL'
                 OR attributes['journey_send_status'] = 'SUCCESSFUL')) AS is_delivered
    FROM deliveries
)
GROUP BY app_id, event_date, channel, iso_country_code, price_millicents_usd;

INSERT INTO deliveries_channels_daily SELECT * FROM deliveries_channels_daily_source
