-- Budgets, the threshold alerts they raised (one per budget, period and threshold), and in-app
-- notifications.
CREATE TABLE budgets (
    id            TEXT PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    limit_amount  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    period        TEXT NOT NULL CHECK (period IN ('weekly', 'monthly', 'quarterly', 'yearly', 'custom')),
    start_date    DATE NOT NULL,
    end_date      DATE,
    category_ids  TEXT NOT NULL DEFAULT '[]',
    account_ids   TEXT NOT NULL DEFAULT '[]',
    thresholds    TEXT NOT NULL DEFAULT '[50,80,100]',
    rollover      BOOLEAN NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    version       BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX budgets_user_idx ON budgets (user_id);

CREATE TABLE budget_alerts (
    budget_id    TEXT NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start DATE NOT NULL,
    threshold    INTEGER NOT NULL,
    spent        BIGINT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (budget_id, period_start, threshold)
);

CREATE TABLE notifications (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('in_app', 'email', 'webhook')),
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    dedup_key       TEXT,
    created_at      TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP,
    read_at         TIMESTAMP
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);
CREATE UNIQUE INDEX notifications_dedup_key ON notifications (dedup_key);
