-- Recurring transactions (created by the Scheduler when due) and savings goals.
CREATE TABLE recurring (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount        BIGINT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    merchant      TEXT NOT NULL DEFAULT '',
    category_id   TEXT REFERENCES categories (id) ON DELETE SET NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    notes         TEXT NOT NULL DEFAULT '',
    frequency     TEXT NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly', 'yearly')),
    every         INTEGER NOT NULL DEFAULT 1,
    day_of_month  INTEGER,
    next_date     DATE NOT NULL,
    end_date      DATE,
    active        BOOLEAN NOT NULL DEFAULT 1,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX recurring_due_idx ON recurring (active, next_date);
CREATE INDEX recurring_user_idx ON recurring (user_id);

CREATE TABLE goals (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    target_amount BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    target_date   DATE,
    account_id    TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    contributed   BIGINT NOT NULL DEFAULT 0,
    reached_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX goals_user_idx ON goals (user_id);
