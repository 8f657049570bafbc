-- Records, keyed by (source, entity, external id). Payloads are JSON text.
CREATE TABLE records (
    source       TEXT    NOT NULL,
    entity       TEXT    NOT NULL,
    external_id  TEXT    NOT NULL,
    unit_kind    TEXT    NOT NULL CHECK (unit_kind IN ('day', 'key')),
    day          TEXT,                 -- local calendar day, YYYY-MM-DD
    key          INTEGER,              -- integer key (e.g. a client id)
    occurred_at  TEXT,                 -- UTC, RFC 3339
    payload      TEXT    NOT NULL CHECK (json_valid(payload)),
    hash         TEXT    NOT NULL,     -- content hash, 64 hex characters
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    first_seen   TEXT    NOT NULL,
    last_changed TEXT    NOT NULL,
    last_run     TEXT,                 -- the run that last created or changed it
    PRIMARY KEY (source, entity, external_id),
    CHECK ((unit_kind = 'day') = (day IS NOT NULL)),
    CHECK ((unit_kind = 'key') = (key IS NOT NULL))
);
CREATE INDEX records_by_day ON records (source, day, entity) WHERE day IS NOT NULL;

-- What each run changed in each record: one row per record created,
-- updated or deleted; `fields` is [{"path", "old", "new"}, ...].
CREATE TABLE record_changes (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    source      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    fields      TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(fields)),
    changed_at  TEXT NOT NULL
);
CREATE INDEX record_changes_by_run ON record_changes (run_id, id);

-- The checkpoint: covered ranges of days or keys per stream (inclusive).
CREATE TABLE covered_ranges (
    id        INTEGER PRIMARY KEY,
    source    TEXT NOT NULL,
    stream    TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('day', 'key')),
    first_day TEXT,
    last_day  TEXT,
    first_key INTEGER,
    last_key  INTEGER,
    CHECK (kind <> 'day' OR (first_day IS NOT NULL AND last_day IS NOT NULL AND first_day <= last_day)),
    CHECK (kind <> 'key' OR (first_key IS NOT NULL AND last_key IS NOT NULL AND first_key <= last_key))
);
CREATE INDEX covered_ranges_by_stream ON covered_ranges (source, stream);

-- The run history: one row per run.
CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    source         TEXT    NOT NULL,
    stream         TEXT    NOT NULL,
    mode           TEXT    NOT NULL CHECK (mode IN ('full', 'delta')),
    target         TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('in_progress', 'completed', 'partial', 'failed', 'cancelled')),
    started_at     TEXT    NOT NULL,
    finished_at    TEXT,
    created        INTEGER NOT NULL DEFAULT 0,
    updated        INTEGER NOT NULL DEFAULT 0,
    unchanged      INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    batches_done   INTEGER NOT NULL DEFAULT 0,
    batches_failed INTEGER NOT NULL DEFAULT 0,
    requests       INTEGER NOT NULL DEFAULT 0,
    rate_limited   INTEGER NOT NULL DEFAULT 0,
    retries        INTEGER NOT NULL DEFAULT 0,
    errors         TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(errors)),
    dry_run        INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1))
);
CREATE INDEX runs_by_stream ON runs (source, stream, started_at);
CREATE INDEX runs_by_start ON runs (started_at);
