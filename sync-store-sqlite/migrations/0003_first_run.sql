-- The run that created each record. Creations are no longer written to the
-- change log (one row less per new record); the history of a run lists them
-- from here. Records stored before this column existed have no first run:
-- their creations stay in record_changes.
ALTER TABLE records ADD COLUMN first_run TEXT;
CREATE INDEX records_by_first_run ON records (first_run) WHERE first_run IS NOT NULL;
