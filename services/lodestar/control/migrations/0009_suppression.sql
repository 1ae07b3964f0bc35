-- Suppressed destinations (issue 5): per application, the addresses no sender may reach
-- on a channel. Hard bounces and complaints reported by email feedback add rows; an
-- operator adds (MANUAL) and removes them through the API. Addresses are normalised by
-- the writer (lodestar.core.email_feedback.normalise_address): email lower-cased, phone
-- numbers (E.164) and push tokens as given. A row keeps the first reason it was added
-- for, unless a complaint upgrades it (lodestar.control.suppression).
CREATE TABLE IF NOT EXISTS suppressed_destinations (
    app_id              text NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    channel             text NOT NULL
                        CHECK (channel IN ('EMAIL', 'SMS', 'PUSH', 'VOICE', 'CUSTOM')),
    address             text COLLATE "C" NOT NULL CHECK (address <> ''),
    reason              text NOT NULL CHECK (reason IN ('BOUNCE', 'COMPLAINT', 'MANUAL')),
    source_message_id   text,
    feedback_id         text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, channel, address)
);
