-- What is provisioned is what was approved: the configuration and plan each approval round
-- was opened with, the provisioning ledger (intent before a write, result after), and
-- username reservations (one request per username, for good).

CREATE TABLE request_pins (
    id                INTEGER PRIMARY KEY,
    request_id        INTEGER NOT NULL REFERENCES requests (id),
    round             INTEGER NOT NULL,
    workflow          TEXT    NOT NULL,
    workflow_version  INTEGER NOT NULL,
    documents         TEXT    NOT NULL,
    plan              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    superseded_at     INTEGER,
    superseded_reason TEXT,
    UNIQUE (request_id, round)
);

CREATE TABLE provision_ledger (
    id                INTEGER PRIMARY KEY,
    request_id        INTEGER NOT NULL REFERENCES requests (id),
    pin_id            INTEGER NOT NULL REFERENCES request_pins (id),
    step              TEXT    NOT NULL,
    connector         TEXT    NOT NULL,
    connector_version INTEGER NOT NULL,
    target_key        TEXT    NOT NULL,
    intent            TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    result            TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (pin_id, step)
);
CREATE INDEX provision_ledger_request ON provision_ledger (request_id, step, target_key);

CREATE TABLE username_reservations (
    username    TEXT    PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    reserved_at INTEGER NOT NULL
);
CREATE INDEX username_reservations_request ON username_reservations (request_id);

-- Usernames already held by live requests are reserved for the oldest of them.
INSERT INTO username_reservations (username, request_id, reserved_at)
SELECT username, MIN(id), MIN(updated_at) FROM requests
WHERE username IS NOT NULL AND state NOT IN ('rejected', 'cancelled')
GROUP BY username;
