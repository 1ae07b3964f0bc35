-- Email (and later other channel) sends, deduplicated on the deterministic message id
-- (issue 5). A sender claims an id (INSERT ... ON CONFLICT DO NOTHING) in its own
-- transaction before it talks to the provider; the row then moves CLAIMED -> SENT
-- (accepted) or FAILED (bounced, rejected, skipped, not rendered) with the outcome and
-- the delivery records that were published, so a replayed request republishes exactly
-- the same records and never reaches the provider again. claimed_by names the sender
-- instance, whose liveness is a PostgreSQL advisory lock it holds while it runs.
CREATE TABLE IF NOT EXISTS sent_messages (
    message_id      text PRIMARY KEY,
    channel         text NOT NULL DEFAULT 'EMAIL',
    app_id          text NOT NULL,
    state           text NOT NULL CHECK (state IN ('CLAIMED', 'SENT', 'FAILED')),
    claimed_by      text NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    outcome_kind    text,
    smtp_code       integer,
    smtp_message    text,
    smtp_stage      text,
    deliveries      jsonb NOT NULL DEFAULT '[]'::jsonb
);

CREATE INDEX IF NOT EXISTS sent_messages_claimed
    ON sent_messages (claimed_at) WHERE state = 'CLAIMED';
