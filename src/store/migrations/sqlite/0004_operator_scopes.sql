-- Authorization in the store: operators' scopes and e-mail, and each request's team.

-- The team a request belongs to (its payload's `team`), kept as a column so scope checks and
-- scoped lists are one indexed comparison.
ALTER TABLE requests ADD COLUMN team TEXT;
UPDATE requests SET team = json_extract(payload, '$.team')
 WHERE json_valid(payload) AND json_type(payload, '$.team') = 'text';
CREATE INDEX requests_team_id ON requests (team, id);

-- Who created a request (the operator or engine component), whatever requester it names:
-- separation of duties covers the creator too.
ALTER TABLE requests ADD COLUMN created_by TEXT;

-- An operator's e-mail, so separation of duties recognises them as a request's requester or
-- subject whichever form the request names them by.
ALTER TABLE operators ADD COLUMN email TEXT;

-- An operator with no rows here acts on every request; with rows, only on requests whose
-- team or workflow is listed.
CREATE TABLE operator_scopes (
    operator TEXT NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    kind     TEXT NOT NULL CHECK (kind IN ('team', 'workflow')),
    value    TEXT NOT NULL,
    PRIMARY KEY (operator, kind, value)
);
