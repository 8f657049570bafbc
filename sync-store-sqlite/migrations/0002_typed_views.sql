-- Views a person can query directly, one per entity the sources produce
-- (the record contract is in the project notes). Missing or oddly typed
-- fields give NULL, never an error.

CREATE VIEW yclients_clients AS
SELECT source,
       key                                    AS client_id,
       payload ->> '$.name'                   AS name,
       payload ->> '$.surname'                AS surname,
       CAST(payload ->> '$.phone' AS TEXT)    AS phone,
       payload ->> '$.email'                  AS email,
       payload ->> '$.visits'                 AS visits,
       payload ->> '$.spent'                  AS spent,
       payload ->> '$.balance'                AS balance,
       CAST(payload ->> '$.last_change_date' AS TEXT) AS last_change_date,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'client' AND source LIKE 'yclients:%';

CREATE VIEW yclients_visits AS
SELECT source,
       CASE WHEN external_id <> '' AND external_id NOT GLOB '*[^0-9]*'
                 AND length(external_id) <= 18
            THEN CAST(external_id AS INTEGER) END AS record_id,
       payload ->> '$.client.id'              AS client_id,
       payload ->> '$.staff_id'               AS staff_id,
       payload ->> '$.staff.name'             AS staff_name,
       day                                    AS visit_date,
       payload ->> '$.datetime'               AS datetime,
       payload ->> '$.attendance'             AS attendance,
       payload ->> '$.visit_id'               AS visit_id,
       payload -> '$.services'                AS services,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'record' AND source LIKE 'yclients:%';

CREATE VIEW kennel_boardings AS
SELECT source,
       external_id                            AS appointment_id,
       payload ->> '$.pet'                    AS pet,
       payload ->> '$.client'                 AS client,
       payload ->> '$.service'                AS service,
       payload ->> '$.status'                 AS status,
       COALESCE(payload ->> '$.check_in', occurred_at) AS check_in,
       payload ->> '$.check_out'              AS check_out,
       day                                    AS check_in_day,
       payload ->> '$.price'                  AS price,
       payload ->> '$.notes'                  AS notes,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'boarding' AND source LIKE 'kennel:%';

-- Records per local day, for comparison with the source's own counts.
CREATE VIEW record_day_counts AS
SELECT source,
       entity,
       day,
       SUM(deleted = 0) AS records,
       SUM(deleted = 1) AS deleted
FROM records
WHERE day IS NOT NULL
GROUP BY source, entity, day;
