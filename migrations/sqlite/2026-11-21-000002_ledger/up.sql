-- The ledger: accounts, categories, transactions, the event log, idempotency keys, exchange rates.
-- Money is BIGINT minor units of the row's currency; dates are calendar dates in the user's zone.
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('cash', 'checking', 'savings', 'credit_card', 'loan', 'investment', 'wallet')),
    currency        TEXT NOT NULL,
    opening_balance BIGINT NOT NULL DEFAULT 0,
    opening_date    DATE NOT NULL,
    number_hint     TEXT,
    archived        BOOLEAN NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX accounts_user_idx ON accounts (user_id);

CREATE TABLE categories (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    parent_id  TEXT REFERENCES categories (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('expense', 'income', 'transfer')),
    color      TEXT,
    icon       TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX categories_user_idx ON categories (user_id);

CREATE TABLE transactions (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    amount           BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    date             DATE NOT NULL,
    occurred_at      TIMESTAMP,
    description      TEXT NOT NULL DEFAULT '',
    merchant         TEXT NOT NULL DEFAULT '',
    category_id      TEXT REFERENCES categories (id) ON DELETE SET NULL,
    category_source  TEXT NOT NULL DEFAULT 'none',
    confidence       DOUBLE PRECISION,
    tags             TEXT NOT NULL DEFAULT '[]',
    notes            TEXT NOT NULL DEFAULT '',
    transfer_id      TEXT,
    foreign_amount   BIGINT,
    foreign_currency TEXT,
    source           TEXT NOT NULL DEFAULT 'api',
    external_id      TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1
);
-- Listing newest first with a (date, id) cursor.
CREATE INDEX transactions_user_date_idx ON transactions (user_id, date, id);
CREATE INDEX transactions_account_idx ON transactions (account_id, date);
CREATE INDEX transactions_category_idx ON transactions (category_id) WHERE category_id IS NOT NULL;
CREATE INDEX transactions_transfer_idx ON transactions (transfer_id) WHERE transfer_id IS NOT NULL;
-- Imports and bank messages never create the same external transaction twice in one account.
CREATE UNIQUE INDEX transactions_external_key ON transactions (account_id, external_id) WHERE external_id IS NOT NULL;

-- Every committed change, per user, in a gapless sequence: WebSocket resume and webhooks read it.
CREATE TABLE events (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- Creating POSTs with an Idempotency-Key: the first answer, replayed for the same key and body.
CREATE TABLE idempotency_keys (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Rates a user gave: 1 base = rate quote, from `date` on. Rates are exact decimal strings.
CREATE TABLE exchange_rates (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    base    TEXT NOT NULL,
    quote   TEXT NOT NULL,
    date    DATE NOT NULL,
    rate    TEXT NOT NULL,
    PRIMARY KEY (user_id, base, quote, date)
);
