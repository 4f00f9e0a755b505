-- Every state change of a job is a new row version with an entry in every index (the state is
-- in the partial indexes' predicates, so no update is HOT). Fewer entries per change:
-- * jobs without a request (housekeeping, benchmarks) need no entry in the request index;
-- * the queue index served only the console's queue filter, which walks the primary key
--   newest first instead (the table is bounded by the retention policy).
DROP INDEX IF EXISTS jobs_queue_id;
DROP INDEX IF EXISTS jobs_request;
CREATE INDEX jobs_request ON jobs (request_id, id) WHERE request_id IS NOT NULL;
