-- The dashboard lists a run's created records a page at a time in key
-- order: the index on first_run alone made every page sort all of the
-- run's records (a million for a first import). This one serves both the
-- lookups by run and the pages, so inserts keep one index, not two.
DROP INDEX IF EXISTS records_by_first_run;
CREATE INDEX records_by_first_run ON records (first_run, entity, external_id)
    WHERE first_run IS NOT NULL;
