-- The user id events carry (Event.user_id), for daily-active-users and per-user
-- analytics. Rows stored before this migration read as '' (unknown user).
ALTER TABLE events ADD COLUMN IF NOT EXISTS user_id String DEFAULT ''
