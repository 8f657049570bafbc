-- When each covered range was checked: the time of the commit that covered
-- it. A later range wins for the days it shares with an earlier one.
ALTER TABLE covered_ranges ADD COLUMN checked_at timestamptz NOT NULL DEFAULT 'epoch';
-- Ranges stored before: their commit is unknown, but it came after the
-- stream's first run started, which is the earliest it can have been.
UPDATE covered_ranges AS c SET checked_at = COALESCE(
    (SELECT MIN(r.started_at) FROM runs AS r
     WHERE r.source = c.source AND r.stream = c.stream),
    now());
