-- Approval by reply: a reply token decides once. The row is written in the transaction that
-- records the decision (and the message), so a second reply with the same token is refused.
-- `token` is the token text in lower case; `auth_results` keeps the reply's
-- Authentication-Results header (DKIM/DMARC) as evidence, when it had one.
CREATE TABLE reply_tokens (
    token        TEXT    PRIMARY KEY,
    approval_id  INTEGER NOT NULL REFERENCES approvals (id),
    approver     TEXT    NOT NULL,
    message_id   TEXT,
    auth_results TEXT,
    used_at      INTEGER NOT NULL
);
CREATE INDEX reply_tokens_approval ON reply_tokens (approval_id);
