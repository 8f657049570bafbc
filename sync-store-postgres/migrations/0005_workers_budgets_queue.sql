-- Which worker ran a run (runs of workers sharing a queue take no lease).
ALTER TABLE runs ADD COLUMN worker text;

-- Request budgets shared by every process and machine of the database: one
-- schedule (JSON) per key, read and written under a row lock.
CREATE TABLE budgets (
    key   text PRIMARY KEY,
    state text NOT NULL
);

-- The work queue: jobs, their batches, and the workers claiming them.
-- Times are microseconds since the Unix epoch on the server's clock.
CREATE TABLE work_jobs (
    job        text        PRIMARY KEY,
    source     text        NOT NULL,
    stream     text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE work_queue (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text   NOT NULL REFERENCES work_jobs (job),
    position    bigint NOT NULL,
    batch       text   NOT NULL,
    state       text   NOT NULL CHECK (state IN ('pending', 'claimed', 'done', 'replaced')),
    worker      text,
    lease_until bigint,
    attempts    bigint NOT NULL DEFAULT 0
);
CREATE INDEX work_queue_claimable ON work_queue (job, state, position);
CREATE INDEX work_queue_by_worker ON work_queue (worker) WHERE state = 'claimed';
CREATE TABLE work_workers (
    worker  text   PRIMARY KEY,
    seen_at bigint NOT NULL
);
