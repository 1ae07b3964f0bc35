-- Admin keys: an API key with no application (app_id NULL) may call every
-- operation, including CreateApp, GetApps and DeleteApp. App keys keep their
-- application and disappear with it (ON DELETE CASCADE from 0001).
ALTER TABLE api_keys ALTER COLUMN app_id DROP NOT NULL;

-- The admin key that `lodestar api` generates when LODESTAR_ADMIN_* are unset
-- is the oldest unrevoked one; this index finds it without a scan.
CREATE INDEX IF NOT EXISTS api_keys_active_admin
    ON api_keys (created_at) WHERE app_id IS NULL AND revoked_at IS NULL;

-- GetApps pages through applications in creation order (keyset on created_at, id).
CREATE INDEX IF NOT EXISTS apps_created_at_id ON apps (created_at, id);
