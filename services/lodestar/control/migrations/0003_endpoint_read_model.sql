-- Read model of endpoint state for GetEndpoint / GetUserEndpoints, written by the
-- engine's projection from lodestar.endpoints. One row per endpoint; deletions are
-- kept as tombstones (deleted = true) so that a replayed older change can never
-- bring a deleted endpoint back. change_ts orders changes: a row is only replaced
-- by a change at least as new.
CREATE TABLE IF NOT EXISTS endpoint_read_model (
    app_id        text        NOT NULL,
    endpoint_id   text        NOT NULL,
    user_id       text,
    address       text,
    channel_type  text,
    endpoint      jsonb,
    deleted       boolean     NOT NULL DEFAULT false,
    change_ts     bigint      NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, endpoint_id)
);

CREATE INDEX IF NOT EXISTS endpoint_read_model_user
    ON endpoint_read_model (app_id, user_id) WHERE user_id IS NOT NULL AND NOT deleted;
CREATE INDEX IF NOT EXISTS endpoint_read_model_address
    ON endpoint_read_model (app_id, address) WHERE address IS NOT NULL AND NOT deleted;
