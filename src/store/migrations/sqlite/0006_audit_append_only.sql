-- The audit trail is append-only: rows are inserted by the store and never updated or deleted.
-- Someone with write access to the file can still drop these triggers; signed checkpoints kept
-- outside the database (`gatehouse audit checkpoint`) catch what they then change.
-- (SQLite has no TRUNCATE; a trigger also turns off its DELETE-everything shortcut.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only: UPDATE on audit refused');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit rows are append-only: DELETE on audit refused');
END;
