-- Only the rare job states keep an index for the console's state filter: an index on every
-- state change cost each claim and completion extra page writes.
DROP INDEX IF EXISTS jobs_state_id;
CREATE INDEX jobs_attention ON jobs (state, id) WHERE state IN ('retrying', 'dead', 'cancelled');

-- Every claim and completion leaves a dead row version and dead index entries that claims
-- must step over until vacuum removes them: vacuum this table early and without throttling.
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
