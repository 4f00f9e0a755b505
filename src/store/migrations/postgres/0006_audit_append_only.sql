-- The audit trail is append-only: rows are inserted by the store and never updated, deleted or
-- truncated. Statement-level triggers refuse the statement itself, even when it matches no row.
-- The table's owner (or a superuser) can still disable or drop them; signed checkpoints kept
-- outside the database (`gatehouse audit checkpoint`) catch what they then change.
CREATE FUNCTION audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: % on audit refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_no_update_delete
    BEFORE UPDATE OR DELETE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_truncate
    BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
