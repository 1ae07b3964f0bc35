-- Control plane: applications (Pinpoint "projects") and their API credentials.
-- Segments, campaigns, journeys and templates come with their issues.
CREATE TABLE IF NOT EXISTS apps (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    tags          jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS api_keys (
    access_key_id text PRIMARY KEY,
    app_id        text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    secret        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE INDEX IF NOT EXISTS api_keys_app_id ON api_keys (app_id);
