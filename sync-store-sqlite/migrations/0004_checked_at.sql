-- When each covered range was checked: the time of the commit that covered
-- it (UTC, fixed-width text like every timestamp here). A later range wins
-- for the days it shares with an earlier one.
ALTER TABLE covered_ranges ADD COLUMN checked_at TEXT NOT NULL DEFAULT '1970-01-01T00:00:00.000000Z';
-- Ranges stored before: their commit is unknown, but it came after the
-- stream's first run started, which is the earliest it can have been.
UPDATE covered_ranges SET checked_at = COALESCE(
    (SELECT MIN(r.started_at) FROM runs AS r
     WHERE r.source = covered_ranges.source AND r.stream = covered_ranges.stream),
    strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z');
