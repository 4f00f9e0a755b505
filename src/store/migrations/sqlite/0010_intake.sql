-- Intake: every message read from a mailbox is recorded exactly once, in the transaction that
-- records its request or its verdict. (mailbox, uidvalidity, uid) is the reading key; a
-- Message-ID is taken once across all mailboxes (a later copy is recorded as `duplicate`).
-- `summary` and `evidence` hold the JSON of domain::intake::{MailSummary, Evidence}.
-- Quarantined messages are `held` until an admin releases or discards them.
CREATE TABLE intake_messages (
    id              INTEGER PRIMARY KEY,
    mailbox         TEXT    NOT NULL,
    uidvalidity     BIGINT  NOT NULL,
    uid             BIGINT  NOT NULL,
    message_id      TEXT,
    verdict         TEXT    NOT NULL,
    reason          TEXT,
    request_id      BIGINT  REFERENCES requests (id),
    summary         TEXT    NOT NULL,
    evidence        TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'done',
    decided_by      TEXT,
    decided_at      BIGINT,
    decision_reason TEXT,
    received_at     BIGINT  NOT NULL,
    UNIQUE (mailbox, uidvalidity, uid)
);
CREATE UNIQUE INDEX intake_messages_message_id ON intake_messages (message_id)
    WHERE message_id IS NOT NULL AND verdict <> 'duplicate';
CREATE INDEX intake_messages_request ON intake_messages (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX intake_messages_held ON intake_messages (status, id) WHERE status = 'held';

-- One row per mailbox: where reading stands, who holds the reading lease, how it went last.
CREATE TABLE mailbox_state (
    mailbox       TEXT    PRIMARY KEY,
    uidvalidity   BIGINT,
    last_uid      BIGINT  NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   BIGINT,
    connected     BIGINT  NOT NULL DEFAULT 0,
    backlog       BIGINT,
    processed     BIGINT  NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at BIGINT,
    updated_at    BIGINT  NOT NULL
);

-- CSV import: each row's key (workflow + normalised e-mail, or name when no e-mail) is taken
-- once, so importing the same rows again creates nothing new.
CREATE TABLE import_rows (
    workflow   TEXT    NOT NULL,
    row_key    TEXT    NOT NULL,
    request_id BIGINT  NOT NULL REFERENCES requests (id),
    file       TEXT    NOT NULL,
    line       BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (workflow, row_key)
);
