-- Views a person can query directly, one per entity the sources produce
-- (the record contract is in the project notes). Sources disagree on types
-- (a number as a string, a phone as a number): the helpers below turn what
-- they cannot read into NULL instead of failing the whole query.

CREATE FUNCTION sync_try_bigint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(v) IN ('number', 'string') AND btrim(v #>> '{}') ~ '^-?[0-9]{1,18}$'
        THEN btrim(v #>> '{}')::bigint
    END
$$;

CREATE FUNCTION sync_try_numeric(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{}')::numeric
        WHEN jsonb_typeof(v) = 'string' AND btrim(v #>> '{}') ~ '^-?[0-9]{1,30}(\.[0-9]{1,30})?$'
        THEN btrim(v #>> '{}')::numeric
    END
$$;

CREATE FUNCTION sync_try_timestamptz(v text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN v::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

CREATE VIEW yclients_clients AS
SELECT source,
       key                                   AS client_id,
       payload ->> 'name'                    AS name,
       payload ->> 'surname'                 AS surname,
       payload ->> 'phone'                   AS phone,
       payload ->> 'email'                   AS email,
       sync_try_bigint(payload -> 'visits')  AS visits,
       sync_try_numeric(payload -> 'spent')  AS spent,
       sync_try_numeric(payload -> 'balance') AS balance,
       payload ->> 'last_change_date'        AS last_change_date,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'client' AND source LIKE 'yclients:%';

CREATE VIEW yclients_visits AS
SELECT source,
       sync_try_bigint(to_jsonb(external_id))          AS record_id,
       sync_try_bigint(payload -> 'client' -> 'id')    AS client_id,
       sync_try_bigint(payload -> 'staff_id')          AS staff_id,
       payload -> 'staff' ->> 'name'                   AS staff_name,
       to_char(day, 'YYYY-MM-DD')                      AS visit_date,
       payload ->> 'datetime'                          AS datetime,
       sync_try_bigint(payload -> 'attendance')        AS attendance,
       sync_try_bigint(payload -> 'visit_id')          AS visit_id,
       payload -> 'services'                           AS services,
       deleted,
       first_seen,
       last_changed
FROM records
WHERE entity = 'record' AND source LIKE 'yclients:%';

CREATE VIEW kennel_boardings AS
SELECT source,
       external_id                                     AS appointment_id,
       payload ->> 'pet'                               AS pet,
       payload ->> 'client'                            AS client,
       payload ->> 'service'                           AS service,
       payload ->> 'status'                            AS status,
       COALESCE(sync_try_timestamptz(payload ->> 'check_in'), occurred_at) AS check_in,
       sync_try_timestamptz(payload ->> 'check_out')   AS check_out,
       day                                             AS check_in_day,
       sync_try_numeric(payload -> 'price')            AS price,
       payload ->> 'notes'                             AS notes,
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
       count(*) FILTER (WHERE NOT deleted) AS records,
       count(*) FILTER (WHERE deleted)     AS deleted
FROM records
WHERE day IS NOT NULL
GROUP BY source, entity, day;
