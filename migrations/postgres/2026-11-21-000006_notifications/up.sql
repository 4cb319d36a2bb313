-- Notifications become a durable outbox: email and webhook rows are written in the same commit as
-- the change that causes them and drained by the Notifier. Webhooks, per-user preferences and
-- password-reset tokens come with it.
ALTER TABLE notifications ADD COLUMN webhook_id TEXT;
ALTER TABLE notifications ADD COLUMN last_error TEXT;
ALTER TABLE notifications ADD COLUMN response_status INTEGER;
-- Only outbox rows waiting for a try have a next_attempt_at (sent, dead and in-app rows do not).
CREATE INDEX notifications_outbox_idx ON notifications (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX notifications_webhook_idx ON notifications (webhook_id, created_at) WHERE webhook_id IS NOT NULL;

CREATE TABLE notification_preferences (
    user_id     TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    preferences TEXT NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    event_types TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX webhooks_user_idx ON webhooks (user_id);

CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
