-- What a salon owner asks, in plain SQL: each visit with its client, staff
-- member and service titles, and each client with visit count, spend,
-- first and last visit. They join the records a YClients company's streams
-- store under one source (`yclients:<company>`): records (entity
-- `record`), clients (`client`), services (`service`) and staff (`staff`).
-- Missing or oddly typed fields give NULL, never an error.
--
-- A visit is a record not deleted whose attendance is 1 (the client came);
-- `bookings` counts every record not deleted, whatever its attendance. The
-- cost of a record is the sum of its services' `cost`.

-- SQLite has no functions in SQL: an id read from a JSON value (an integer,
-- or a string of digits) is written out inline, as
--   CASE WHEN typeof(v) = 'integer' THEN v
--        WHEN typeof(v) = 'text' AND trim(v) <> '' AND length(trim(v)) <= 18
--             AND trim(v) NOT GLOB '*[^0-9]*' THEN CAST(trim(v) AS INTEGER) END

CREATE VIEW yclients_visit_details AS
SELECT r.source,
       CASE WHEN r.external_id <> '' AND r.external_id NOT GLOB '*[^0-9]*'
                 AND length(r.external_id) <= 18
            THEN CAST(r.external_id AS INTEGER) END           AS record_id,
       CASE WHEN typeof(r.payload ->> '$.visit_id') = 'integer'
            THEN r.payload ->> '$.visit_id' END               AS visit_id,
       r.day                                                  AS visit_date,
       CAST(r.payload ->> '$.datetime' AS TEXT)               AS datetime,
       CASE WHEN typeof(r.payload ->> '$.attendance') = 'integer'
            THEN r.payload ->> '$.attendance'
            WHEN typeof(r.payload ->> '$.attendance') = 'text'
                 AND trim(r.payload ->> '$.attendance') IN ('-1', '0', '1', '2')
            THEN CAST(trim(r.payload ->> '$.attendance') AS INTEGER) END AS attendance,
       r.client_id,
       COALESCE(
           NULLIF(trim(COALESCE(CAST(c.payload ->> '$.name' AS TEXT), '') || ' '
                       || COALESCE(CAST(c.payload ->> '$.surname' AS TEXT), '')), ''),
           CAST(r.payload ->> '$.client.name' AS TEXT))        AS client_name,
       COALESCE(CAST(c.payload ->> '$.phone' AS TEXT),
                CAST(r.payload ->> '$.client.phone' AS TEXT))  AS client_phone,
       r.staff_id,
       COALESCE(CAST(s.payload ->> '$.name' AS TEXT),
                CAST(r.payload ->> '$.staff.name' AS TEXT))    AS staff_name,
       (SELECT group_concat(title, ', ')
          FROM (SELECT COALESCE(CAST(svc.payload ->> '$.title' AS TEXT),
                                CASE WHEN j.type = 'object'
                                     THEN CAST(json_extract(j.value, '$.title') AS TEXT) END) AS title
                  FROM json_each(CASE WHEN json_type(r.payload, '$.services') = 'array'
                                      THEN r.payload -> '$.services' END) AS j
                  LEFT JOIN records AS svc
                         ON svc.source = r.source AND svc.entity = 'service'
                        AND svc.external_id = CASE WHEN j.type = 'object'
                                                   THEN CAST(json_extract(j.value, '$.id') AS TEXT) END
                 ORDER BY j.key))                              AS service_titles,
       (SELECT SUM(CASE
                   WHEN j.type <> 'object' THEN NULL
                   WHEN typeof(json_extract(j.value, '$.cost')) IN ('integer', 'real')
                   THEN json_extract(j.value, '$.cost')
                   WHEN typeof(json_extract(j.value, '$.cost')) = 'text'
                        AND trim(json_extract(j.value, '$.cost')) <> ''
                        AND trim(json_extract(j.value, '$.cost')) NOT GLOB '*[^0-9.]*'
                   THEN CAST(trim(json_extract(j.value, '$.cost')) AS REAL) END)
          FROM json_each(CASE WHEN json_type(r.payload, '$.services') = 'array'
                              THEN r.payload -> '$.services' END) AS j) AS cost,
       r.deleted,
       c.deleted                                              AS client_deleted,
       s.deleted                                              AS staff_deleted,
       r.last_changed
FROM (SELECT records.*,
             CASE WHEN typeof(payload ->> '$.client.id') = 'integer'
                  THEN payload ->> '$.client.id'
                  WHEN typeof(payload ->> '$.client.id') = 'text'
                       AND trim(payload ->> '$.client.id') <> ''
                       AND length(trim(payload ->> '$.client.id')) <= 18
                       AND trim(payload ->> '$.client.id') NOT GLOB '*[^0-9]*'
                  THEN CAST(trim(payload ->> '$.client.id') AS INTEGER) END AS client_id,
             CASE WHEN typeof(payload ->> '$.staff_id') = 'integer'
                  THEN payload ->> '$.staff_id'
                  WHEN typeof(payload ->> '$.staff_id') = 'text'
                       AND trim(payload ->> '$.staff_id') <> ''
                       AND length(trim(payload ->> '$.staff_id')) <= 18
                       AND trim(payload ->> '$.staff_id') NOT GLOB '*[^0-9]*'
                  THEN CAST(trim(payload ->> '$.staff_id') AS INTEGER)
                  WHEN typeof(payload ->> '$.staff.id') = 'integer'
                  THEN payload ->> '$.staff.id' END AS staff_id
        FROM records
       WHERE entity = 'record' AND source LIKE 'yclients:%') AS r
LEFT JOIN records AS c
       ON c.source = r.source AND c.entity = 'client'
      AND c.external_id = CAST(r.client_id AS TEXT)
LEFT JOIN records AS s
       ON s.source = r.source AND s.entity = 'staff'
      AND s.external_id = CAST(r.staff_id AS TEXT);

CREATE VIEW yclients_client_visits AS
SELECT c.source,
       c.key                                                  AS client_id,
       CAST(c.payload ->> '$.name' AS TEXT)                   AS name,
       CAST(c.payload ->> '$.surname' AS TEXT)                AS surname,
       CAST(c.payload ->> '$.phone' AS TEXT)                  AS phone,
       CAST(c.payload ->> '$.email' AS TEXT)                  AS email,
       COALESCE(v.visits, 0)                                  AS visit_count,
       COALESCE(v.spend, 0)                                   AS spend,
       v.first_visit,
       v.last_visit,
       COALESCE(v.bookings, 0)                                AS bookings,
       c.deleted
FROM records AS c
LEFT JOIN (SELECT source,
                  client_id,
                  COUNT(*)                                         AS bookings,
                  SUM(attendance = 1)                              AS visits,
                  SUM(CASE WHEN attendance = 1 THEN cost END)      AS spend,
                  MIN(CASE WHEN attendance = 1 THEN visit_date END) AS first_visit,
                  MAX(CASE WHEN attendance = 1 THEN visit_date END) AS last_visit
             FROM yclients_visit_details
            WHERE deleted = 0 AND client_id IS NOT NULL
            GROUP BY source, client_id) AS v
       ON v.source = c.source AND v.client_id = c.key
WHERE c.entity = 'client' AND c.source LIKE 'yclients:%';
