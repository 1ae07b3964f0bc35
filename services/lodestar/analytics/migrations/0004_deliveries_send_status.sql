-- The send status of _campaign.send / _journey.send receipts (Pinpoint's
-- campaign_send_status / journey_send_status attributes) as a column, so the
-- delivery KPIs never read the attributes map. Parts written before this
-- migration compute it from the map when read.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS send_status LowCardinality(String)
    MATERIALIZED if(attributes['campaign_send_status'] != '', attributes['campaign_send_status'],
                    attributes['journey_send_status'])
