CREATE TABLE events_by_user (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, seq)
);
INSERT INTO events_by_user (user_id, seq, message_id, kind, envelope, created_at)
    SELECT k.user_id, e.seq, e.message_id, e.kind, e.envelope, e.created_at
    FROM events e JOIN user_keys k ON k.num = e.user_num;
DROP TABLE events;
ALTER TABLE events_by_user RENAME TO events;
DROP TABLE user_keys;
