-- What a salon owner asks, in plain SQL: each visit with its client, staff
-- member and service titles, and each client with visit count, spend,
-- first and last visit. They join the records a YClients company's streams
-- store under one source (`yclients:<company>`): records (entity
-- `record`), clients (`client`), services (`service`) and staff (`staff`).
-- Missing or oddly typed fields give NULL, never an error (the sync_try_*
-- helpers of 0002_typed_views.sql).
--
-- A visit is a record not deleted whose attendance is 1 (the client came);
-- `bookings` counts every record not deleted, whatever its attendance. The
-- cost of a record is the sum of its services' `cost`.

CREATE VIEW yclients_visit_details AS
SELECT r.source,
       sync_try_bigint(to_jsonb(r.external_id))               AS record_id,
       sync_try_bigint(r.payload -> 'visit_id')               AS visit_id,
       r.day                                                  AS visit_date,
       r.payload ->> 'datetime'                               AS datetime,
       sync_try_bigint(r.payload -> 'attendance')             AS attendance,
       r.client_id,
       COALESCE(
           NULLIF(btrim(COALESCE(c.payload ->> 'name', '') || ' '
                        || COALESCE(c.payload ->> 'surname', '')), ''),
           r.payload -> 'client' ->> 'name')                  AS client_name,
       COALESCE(c.payload ->> 'phone',
                r.payload -> 'client' ->> 'phone')            AS client_phone,
       r.staff_id,
       COALESCE(s.payload ->> 'name',
                r.payload -> 'staff' ->> 'name')              AS staff_name,
       (SELECT string_agg(COALESCE(svc.payload ->> 'title', j.item ->> 'title'), ', '
                          ORDER BY j.n)
          FROM jsonb_array_elements(r.services) WITH ORDINALITY AS j(item, n)
          LEFT JOIN records AS svc
                 ON svc.source = r.source AND svc.entity = 'service'
                AND svc.external_id = sync_try_bigint(j.item -> 'id')::text) AS service_titles,
       (SELECT sum(sync_try_numeric(j.item -> 'cost'))
          FROM jsonb_array_elements(r.services) AS j(item))   AS cost,
       r.deleted,
       c.deleted                                              AS client_deleted,
       s.deleted                                              AS staff_deleted,
       r.last_changed
FROM (SELECT records.*,
             sync_try_bigint(payload -> 'client' -> 'id')     AS client_id,
             COALESCE(sync_try_bigint(payload -> 'staff_id'),
                      sync_try_bigint(payload -> 'staff' -> 'id')) AS staff_id,
             CASE WHEN jsonb_typeof(payload -> 'services') = 'array'
                  THEN payload -> 'services' ELSE '[]'::jsonb END AS services
        FROM records
       WHERE entity = 'record' AND source LIKE 'yclients:%') AS r
LEFT JOIN records AS c
       ON c.source = r.source AND c.entity = 'client'
      AND c.external_id = r.client_id::text
LEFT JOIN records AS s
       ON s.source = r.source AND s.entity = 'staff'
      AND s.external_id = r.staff_id::text;

CREATE VIEW yclients_client_visits AS
SELECT c.source,
       c.key                                                  AS client_id,
       c.payload ->> 'name'                                   AS name,
       c.payload ->> 'surname'                                AS surname,
       c.payload ->> 'phone'                                  AS phone,
       c.payload ->> 'email'                                  AS email,
       COALESCE(v.visits, 0)                                  AS visit_count,
       COALESCE(v.spend, 0)                                   AS spend,
       v.first_visit,
       v.last_visit,
       COALESCE(v.bookings, 0)                                AS bookings,
       c.deleted
FROM records AS c
LEFT JOIN (SELECT source,
                  client_id,
                  count(*)                                     AS bookings,
                  count(*) FILTER (WHERE attendance = 1)       AS visits,
                  sum(cost) FILTER (WHERE attendance = 1)      AS spend,
                  min(visit_date) FILTER (WHERE attendance = 1) AS first_visit,
                  max(visit_date) FILTER (WHERE attendance = 1) AS last_visit
             FROM yclients_visit_details
            WHERE NOT deleted AND client_id IS NOT NULL
            GROUP BY source, client_id) AS v
       ON v.source = c.source AND v.client_id = c.key
WHERE c.entity = 'client' AND c.source LIKE 'yclients:%';
