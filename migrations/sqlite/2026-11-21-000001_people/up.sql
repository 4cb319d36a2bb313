-- People and their sign-in sessions.
CREATE TABLE users (
    id             TEXT PRIMARY KEY NOT NULL,
    email          TEXT NOT NULL,            -- trimmed and lower-cased
    name           TEXT NOT NULL DEFAULT '',
    role           TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    base_currency  TEXT NOT NULL DEFAULT 'USD',
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    locale         TEXT NOT NULL DEFAULT 'en',
    password_hash  TEXT NOT NULL,
    security_stamp TEXT NOT NULL,            -- rotated to invalidate every token at once
    disabled       BOOLEAN NOT NULL DEFAULT 0,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    last_seen_at   TIMESTAMP
);
CREATE UNIQUE INDEX users_email_key ON users (email);

-- One row per sign-in; the refresh tokens issued for it form one rotation family.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     TIMESTAMP NOT NULL,
    last_used_at   TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,       -- absolute lifetime, never extended
    revoked_at     TIMESTAMP,
    revoked_reason TEXT,
    user_agent     TEXT NOT NULL DEFAULT '',
    ip             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes; `used_at` set means it was rotated away, and
-- presenting it again revokes the whole session.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
