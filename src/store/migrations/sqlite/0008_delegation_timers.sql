-- Approval delegation and stage timers: who lets whom decide in their place until when; a
-- decision taken by a delegate records who acted (`decided_by`) while `approver` stays the
-- person acted for; each timer action (a reminder per threshold, an escalation, an expiry)
-- happens once per stage, whichever worker gets there first (the primary key decides).

CREATE TABLE delegations (
    id          INTEGER PRIMARY KEY,
    from_login  TEXT    NOT NULL,
    to_login    TEXT    NOT NULL,
    until_at    INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT
);
CREATE INDEX delegations_active ON delegations (until_at) WHERE revoked_at IS NULL;

ALTER TABLE approval_decisions ADD COLUMN decided_by TEXT;

CREATE TABLE approval_timer_events (
    approval_id INTEGER NOT NULL REFERENCES approvals (id),
    action      TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    worker      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    PRIMARY KEY (approval_id, action)
);
