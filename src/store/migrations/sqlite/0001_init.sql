-- Gatehouse schema for SQLite. Timestamps are Unix milliseconds (UTC); JSON is stored as TEXT.

CREATE TABLE requests (
    id            INTEGER PRIMARY KEY,
    workflow      TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    subject_name  TEXT    NOT NULL,
    subject_email TEXT,
    username      TEXT,
    state         TEXT    NOT NULL,
    stage         INTEGER,
    requester     TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    last_error    TEXT,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX requests_state_id ON requests (state, id);
CREATE INDEX requests_workflow_id ON requests (workflow, id);

CREATE TABLE approvals (
    id          INTEGER PRIMARY KEY,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    stage       INTEGER NOT NULL,
    stage_name  TEXT    NOT NULL,
    policy      TEXT    NOT NULL,
    approvers   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    escalate_at INTEGER,
    updated_by  TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (request_id, stage)
);
CREATE INDEX approvals_pending ON approvals (id) WHERE status = 'pending';

CREATE TABLE approval_approvers (
    approval_id INTEGER NOT NULL REFERENCES approvals (id),
    position    INTEGER NOT NULL,
    approver    TEXT    NOT NULL,
    PRIMARY KEY (approval_id, position)
);
CREATE INDEX approval_approvers_by_name ON approval_approvers (approver, approval_id);

CREATE TABLE approval_decisions (
    id          INTEGER PRIMARY KEY,
    approval_id INTEGER NOT NULL REFERENCES approvals (id),
    approver    TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    reason      TEXT,
    overridden  INTEGER NOT NULL DEFAULT 0,
    source      TEXT    NOT NULL,
    decided_at  INTEGER NOT NULL
);
CREATE INDEX approval_decisions_approval ON approval_decisions (approval_id, id);

CREATE TABLE request_steps (
    id         INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES requests (id),
    job_id     INTEGER,
    name       TEXT    NOT NULL,
    input      TEXT,
    output     TEXT,
    error      TEXT,
    at         INTEGER NOT NULL
);
CREATE INDEX request_steps_request ON request_steps (request_id, id);

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    queue            TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    unique_key       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    request_id       INTEGER,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    failed_at        INTEGER
);
CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id)
    WHERE state IN ('available', 'retrying');
CREATE UNIQUE INDEX jobs_unique_unfinished ON jobs (unique_key)
    WHERE state IN ('available', 'running', 'retrying');
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_request ON jobs (request_id, id);
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_queue_id ON jobs (queue, id);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'completed';
CREATE INDEX jobs_failed ON jobs (failed_at) WHERE failed_at IS NOT NULL;

CREATE TABLE queues (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_by TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE workers (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    current_job  INTEGER,
    processed    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    concurrency  INTEGER NOT NULL,
    status       TEXT    NOT NULL
);

CREATE TABLE logs (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    level_no   INTEGER NOT NULL,
    target     TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    request_id INTEGER,
    job_id     INTEGER,
    worker     TEXT
);
CREATE INDEX logs_request ON logs (request_id, id) WHERE request_id IS NOT NULL;
CREATE INDEX logs_worker ON logs (worker, id) WHERE worker IS NOT NULL;
CREATE INDEX logs_at ON logs (at);

CREATE TABLE configs (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE audit (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    source    TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    entity    TEXT    NOT NULL,
    entity_id TEXT    NOT NULL,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_entity ON audit (entity, entity_id, id);
CREATE INDEX audit_actor ON audit (actor, id);

CREATE TABLE operators (
    name       TEXT    PRIMARY KEY,
    role       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE probe_runs (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    worker TEXT    NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX probe_runs_job ON probe_runs (job_id);
