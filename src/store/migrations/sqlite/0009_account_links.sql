-- Reconciliation: what Gatehouse knows about each account in each target. `linked` accounts
-- were provisioned (or adopted by an operator) and `expected` holds the state last written or
-- adopted; `ignored` accounts are left alone on purpose; `revoking` / `revoked` follow an
-- operator's revoke until the engine has removed the account.
CREATE TABLE account_links (
    connector  TEXT   NOT NULL,
    account    TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    expected   TEXT   NOT NULL,
    decided_by TEXT,
    reason     TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connector, account)
);
