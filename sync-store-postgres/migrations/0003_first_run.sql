-- The run that created each record. Creations are no longer written to the
-- change log (one row less per new record, the bulk of a first insert); the
-- history of a run lists them from here. Records stored before this column
-- existed have no first run: their creations stay in record_changes.
ALTER TABLE records ADD COLUMN first_run text;
-- Run ids sort by start time and records are appended run after run, so a
-- BRIN index finds a run's records at a fraction of a B-tree's cost per
-- insert (a B-tree measured about a fifth slower first inserts).
CREATE INDEX records_by_first_run ON records USING brin (first_run);
