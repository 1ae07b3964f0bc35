-- Email feedback without Lodestar's headers (SES notifications whose mail carries
-- only SES's messageId) is matched through the id the relay gave the message.
CREATE INDEX IF NOT EXISTS sent_messages_provider_id
    ON sent_messages (app_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
