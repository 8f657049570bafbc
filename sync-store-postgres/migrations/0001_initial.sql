-- Records, keyed by (source, entity, external id), with the payload as jsonb.
CREATE TABLE records (
    source       text        NOT NULL,
    entity       text        NOT NULL,
    external_id  text        NOT NULL,
    unit_kind    text        NOT NULL CHECK (unit_kind IN ('day', 'key')),
    day          date,                   -- local calendar day
    key          bigint,                 -- integer key (e.g. a client id)
    occurred_at  timestamptz,
    payload      jsonb       NOT NULL,
    hash         text        NOT NULL,   -- content hash, 64 hex characters
    deleted      boolean     NOT NULL DEFAULT false,
    first_seen   timestamptz NOT NULL,
    last_changed timestamptz NOT NULL,
    last_run     text,                   -- the run that last created or changed it
    PRIMARY KEY (source, entity, external_id),
    CHECK ((unit_kind = 'day') = (day IS NOT NULL)),
    CHECK ((unit_kind = 'key') = (key IS NOT NULL))
);
CREATE INDEX records_by_day ON records (source, day, entity) WHERE day IS NOT NULL;

-- What each run changed in each record: one row per record created,
-- updated or deleted; `fields` is [{"path", "old", "new"}, ...].
-- Keyed by run first: the one lookup is "what did run X change", and one
-- index per row keeps bulk writes cheap.
CREATE TABLE record_changes (
    run_id      text        NOT NULL,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    source      text        NOT NULL,
    entity      text        NOT NULL,
    external_id text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('created', 'updated', 'deleted')),
    fields      jsonb       NOT NULL DEFAULT '[]',
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (run_id, id)
);

-- The checkpoint: covered ranges of days or keys per stream (inclusive).
CREATE TABLE covered_ranges (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source    text   NOT NULL,
    stream    text   NOT NULL,
    kind      text   NOT NULL CHECK (kind IN ('day', 'key')),
    first_day date,
    last_day  date,
    first_key bigint,
    last_key  bigint,
    CHECK (kind <> 'day' OR (first_day IS NOT NULL AND last_day IS NOT NULL AND first_day <= last_day)),
    CHECK (kind <> 'key' OR (first_key IS NOT NULL AND last_key IS NOT NULL AND first_key <= last_key))
);
CREATE INDEX covered_ranges_by_stream ON covered_ranges (source, stream);

-- The run history: one row per run.
CREATE TABLE runs (
    id             text        PRIMARY KEY,
    seq            bigint      GENERATED ALWAYS AS IDENTITY, -- order of begin, breaks ties
    source         text        NOT NULL,
    stream         text        NOT NULL,
    mode           text        NOT NULL CHECK (mode IN ('full', 'delta')),
    target         text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('in_progress', 'completed', 'partial', 'failed', 'cancelled')),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    created        bigint      NOT NULL DEFAULT 0,
    updated        bigint      NOT NULL DEFAULT 0,
    unchanged      bigint      NOT NULL DEFAULT 0,
    deleted        bigint      NOT NULL DEFAULT 0,
    batches_done   bigint      NOT NULL DEFAULT 0,
    batches_failed bigint      NOT NULL DEFAULT 0,
    requests       bigint      NOT NULL DEFAULT 0,
    rate_limited   bigint      NOT NULL DEFAULT 0,
    retries        bigint      NOT NULL DEFAULT 0,
    errors         jsonb       NOT NULL DEFAULT '[]',
    dry_run        boolean     NOT NULL DEFAULT false
);
CREATE INDEX runs_by_stream ON runs (source, stream, started_at DESC);
CREATE INDEX runs_by_start ON runs (started_at DESC);
