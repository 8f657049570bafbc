-- Which worker ran a run (runs of workers sharing a queue take no lease).
ALTER TABLE runs ADD COLUMN worker TEXT;

-- Request budgets shared by every process of the database: one schedule
-- (JSON) per key, read and written under the write lock.
CREATE TABLE budgets (
    key   TEXT PRIMARY KEY,
    state TEXT NOT NULL
);

-- The work queue: jobs, their batches, and the workers claiming them.
-- Times are microseconds since the Unix epoch on the database's clock.
CREATE TABLE work_jobs (
    job        TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    stream     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE work_queue (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL REFERENCES work_jobs (job),
    position    INTEGER NOT NULL,
    batch       TEXT    NOT NULL CHECK (json_valid(batch)),
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'claimed', 'done', 'replaced')),
    worker      TEXT,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX work_queue_claimable ON work_queue (job, state, position);
CREATE INDEX work_queue_by_worker ON work_queue (worker) WHERE state = 'claimed';
CREATE TABLE work_workers (
    worker  TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
