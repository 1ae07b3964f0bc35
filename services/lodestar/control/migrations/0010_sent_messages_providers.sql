-- Every channel's sender records its provider's answer in sent_messages (issue 5):
-- the HTTP status (or none), the provider's text and its message id (Twilio sid,
-- FCM name, APNs apns-id …). Email keeps its SMTP columns.
ALTER TABLE sent_messages ADD COLUMN IF NOT EXISTS status_code integer;
ALTER TABLE sent_messages ADD COLUMN IF NOT EXISTS status_message text;
ALTER TABLE sent_messages ADD COLUMN IF NOT EXISTS provider_message_id text;
