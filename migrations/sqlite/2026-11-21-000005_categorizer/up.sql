-- The categorizer's per-user data: ordered rules, and merchant memory (the category a user last
-- chose for a normalized merchant). The learned classifier is rebuilt from the user's own labels.
CREATE TABLE rules (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position         BIGINT NOT NULL,
    name             TEXT NOT NULL,
    conditions       TEXT NOT NULL,
    match_mode       TEXT NOT NULL CHECK (match_mode IN ('all', 'any')),
    actions          TEXT NOT NULL,
    stop_processing  BOOLEAN NOT NULL DEFAULT 0,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX rules_user_idx ON rules (user_id, position);

CREATE TABLE merchant_memory (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    merchant_key TEXT NOT NULL,
    category_id  TEXT NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, merchant_key)
);

-- The learned classifier reads the user's own labels, newest first.
CREATE INDEX transactions_user_labels ON transactions (user_id, updated_at) WHERE category_source = 'user';
