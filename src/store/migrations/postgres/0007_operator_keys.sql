-- Operators' SSH public keys: `gatehouse serve` maps the key that opened a connection to its
-- operator. A key belongs to one operator; removing the operator removes their keys.
CREATE TABLE operator_keys (
    fingerprint    TEXT   PRIMARY KEY,
    operator       TEXT   NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    algorithm      TEXT   NOT NULL,
    public_key     TEXT   NOT NULL,
    comment        TEXT,
    added_at       BIGINT NOT NULL,
    added_by       TEXT   NOT NULL,
    last_used_at   BIGINT,
    last_used_from TEXT
);
CREATE INDEX operator_keys_operator ON operator_keys (operator);
