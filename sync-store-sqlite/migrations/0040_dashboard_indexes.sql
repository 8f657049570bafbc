-- Indexes for reads of the dashboard on stores of millions of records.
--
-- A run's created records are listed a page at a time in key order: the
-- index on first_run alone made every page sort all of the run's records
-- (a million for a first import). This one serves both the lookups by run
-- and the pages.
DROP INDEX IF EXISTS records_by_first_run;
CREATE INDEX records_by_first_run ON records (first_run, entity, external_id)
    WHERE first_run IS NOT NULL;

-- Per-day counts (a calendar year) skip deleted records: with `deleted` in
-- the index they are counted from the index alone, without reading every
-- row of the year. It replaces the index by day, so inserts still keep one.
DROP INDEX IF EXISTS records_by_day;
CREATE INDEX records_by_day ON records (source, day, entity, deleted)
    WHERE day IS NOT NULL;
