-- Each user gets a small integer key, never reused, and the event log is keyed by it instead of the
-- 36-character user id. Every commit appends to the end of each of its users' ranges in the events
-- key, so those leaves are rewritten on every commit; short keys pack more per leaf, and leaves
-- split less often (docs/benchmarks.md, session 10).
CREATE TABLE user_keys (
    num     INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE
);
INSERT INTO user_keys (user_id) SELECT id FROM users ORDER BY created_at, id;

CREATE TABLE events_by_key (
    user_num   BIGINT NOT NULL REFERENCES user_keys (num) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_num, seq)
);
INSERT INTO events_by_key (user_num, seq, message_id, kind, envelope, created_at)
    SELECT k.num, e.seq, e.message_id, e.kind, e.envelope, e.created_at
    FROM events e JOIN user_keys k ON k.user_id = e.user_id
    ORDER BY k.num, e.seq;
DROP TABLE events;
ALTER TABLE events_by_key RENAME TO events;
