-- The kennel boardings as the source stores them from the real site's
-- detail pages: every pet, the client's contacts, the stay from the page's
-- timestamps, the price total with its line items, notes and the labelled
-- pet fields. Columns of the first version (pet, client, service, price as
-- plain values) still read records stored in its shape.
DROP VIEW IF EXISTS kennel_boardings;
CREATE VIEW kennel_boardings AS
SELECT source,
       external_id                                                  AS appointment_id,
       CASE WHEN json_type(payload, '$.pets') = 'array'
            THEN (SELECT group_concat(CAST(value AS TEXT), ', ')
                  FROM json_each(payload, '$.pets'))
            ELSE CAST(payload ->> '$.pet' AS TEXT) END              AS pet,
       CASE WHEN json_type(payload, '$.pets') = 'array'
            THEN payload -> '$.pets' END                            AS pets,
       CASE WHEN json_type(payload, '$.client') = 'object'
            THEN CAST(payload ->> '$.client.name' AS TEXT)
            ELSE CAST(payload ->> '$.client' AS TEXT) END           AS client,
       CASE WHEN json_type(payload, '$.client') = 'object'
            THEN CAST(payload ->> '$.client.email' AS TEXT) END     AS client_email,
       CASE WHEN json_type(payload, '$.client') = 'object'
            THEN CAST(payload ->> '$.client.phone' AS TEXT) END     AS client_phone,
       CAST(COALESCE(payload ->> '$.service_type', payload ->> '$.service') AS TEXT) AS service,
       CAST(payload ->> '$.status' AS TEXT)                         AS status,
       COALESCE(payload ->> '$.check_in', occurred_at)              AS check_in,
       payload ->> '$.check_out'                                    AS check_out,
       day                                                          AS check_in_day,
       CAST(payload ->> '$.duration' AS TEXT)                       AS duration,
       CASE WHEN json_type(payload, '$.price') = 'object'
            THEN CASE WHEN json_type(payload, '$.price.total_cents') = 'integer'
                      THEN (payload ->> '$.price.total_cents') / 100.0 END
            ELSE payload ->> '$.price' END                          AS price,
       CASE WHEN json_type(payload, '$.price') = 'object'
            THEN payload -> '$.price.line_items' END                AS price_items,
       CAST(payload ->> '$.notes' AS TEXT)                          AS notes,
       CASE WHEN json_type(payload, '$.fields') = 'object'
            THEN payload -> '$.fields' END                          AS fields,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'boarding' AND source LIKE 'kennel:%';
