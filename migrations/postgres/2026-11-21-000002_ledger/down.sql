DROP TABLE exchange_rates;
DROP TABLE idempotency_keys;
DROP TABLE events;
DROP TABLE transactions;
DROP TABLE categories;
DROP TABLE accounts;
