-- Periodic jobs run once per period however many hosts propose them, and whenever.
CREATE TABLE periodic_runs (
    key TEXT PRIMARY KEY,
    at  BIGINT NOT NULL
);
CREATE INDEX periodic_runs_at ON periodic_runs (at);
