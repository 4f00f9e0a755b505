-- Only the rare job states keep an index for the console's state filter: an index on every
-- state change cost each claim and completion extra page writes.
DROP INDEX IF EXISTS jobs_state_id;
CREATE INDEX jobs_attention ON jobs (state, id) WHERE state IN ('retrying', 'dead', 'cancelled');
