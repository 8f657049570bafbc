-- The kennel boardings as the source stores them from the real site's
-- detail pages: every pet, the client's contacts, the stay from the page's
-- timestamps, the price total with its line items, notes and the labelled
-- pet fields. Columns of the first version (pet, client, service, price as
-- plain values) still read records stored in its shape.
DROP VIEW IF EXISTS kennel_boardings;
CREATE VIEW kennel_boardings AS
SELECT source,
       external_id                                                  AS appointment_id,
       CASE WHEN jsonb_typeof(payload -> 'pets') = 'array'
            THEN (SELECT string_agg(p, ', ' ORDER BY n)
                  FROM jsonb_array_elements_text(payload -> 'pets') WITH ORDINALITY AS t(p, n))
            ELSE payload ->> 'pet' END                              AS pet,
       CASE WHEN jsonb_typeof(payload -> 'pets') = 'array'
            THEN payload -> 'pets' END                              AS pets,
       CASE WHEN jsonb_typeof(payload -> 'client') = 'object'
            THEN payload -> 'client' ->> 'name'
            ELSE payload ->> 'client' END                           AS client,
       CASE WHEN jsonb_typeof(payload -> 'client') = 'object'
            THEN payload -> 'client' ->> 'email' END                AS client_email,
       CASE WHEN jsonb_typeof(payload -> 'client') = 'object'
            THEN payload -> 'client' ->> 'phone' END                AS client_phone,
       COALESCE(payload ->> 'service_type', payload ->> 'service')  AS service,
       payload ->> 'status'                                         AS status,
       COALESCE(sync_try_timestamptz(payload ->> 'check_in'), occurred_at) AS check_in,
       sync_try_timestamptz(payload ->> 'check_out')                AS check_out,
       day                                                          AS check_in_day,
       payload ->> 'duration'                                       AS duration,
       CASE WHEN jsonb_typeof(payload -> 'price') = 'object'
            THEN round(sync_try_numeric(payload -> 'price' -> 'total_cents') / 100, 2)
            ELSE sync_try_numeric(payload -> 'price') END           AS price,
       CASE WHEN jsonb_typeof(payload -> 'price') = 'object'
            THEN payload -> 'price' -> 'line_items' END             AS price_items,
       payload ->> 'notes'                                          AS notes,
       CASE WHEN jsonb_typeof(payload -> 'fields') = 'object'
            THEN payload -> 'fields' END                            AS fields,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'boarding' AND source LIKE 'kennel:%';
