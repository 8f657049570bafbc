//! Typed views of the API's clients, records and catalogue (services,
//! service categories, staff; lenient: the official samples disagree on
//! types), and their mapping into core records.
//!
//! The stored payload is always the raw JSON object as served; the typed
//! structs validate it and give the fields the mapping needs.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sync_core::{Record, SyncError, Tz, Unit};

/// Entity name of a client record.
pub const CLIENT_ENTITY: &str = "client";
/// Entity name of an appointment record.
pub const RECORD_ENTITY: &str = "record";
/// Entity name of a service of the catalogue.
pub const SERVICE_ENTITY: &str = "service";
/// Entity name of a service category.
pub const SERVICE_CATEGORY_ENTITY: &str = "service_category";
/// Entity name of a staff member.
pub const STAFF_ENTITY: &str = "staff";
/// Client fields the clients stream asks the search for.
pub const CLIENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "surname",
    "patronymic",
    "phone",
    "email",
    "sex_id",
    "birth_date",
    "discount",
    "comment",
    "visits",
    "spent",
    "balance",
    "last_change_date",
    "categories",
    "custom_fields",
];
/// Top-level fields left out of the content hash: they change without the
/// record or client changing for us.
pub const VOLATILE_FIELDS: &[&str] = &["last_change_date"];

/// A client as the API gives it. Only `id` is required.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiClient {
    /// Client id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: i64,
    /// First name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Surname.
    #[serde(default, deserialize_with = "lenient_string")]
    pub surname: Option<String>,
    /// Patronymic.
    #[serde(default, deserialize_with = "lenient_string")]
    pub patronymic: Option<String>,
    /// Phone: a string or a number in the samples; kept as text.
    #[serde(default, deserialize_with = "lenient_string")]
    pub phone: Option<String>,
    /// E-mail; missing when the user may not see it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub email: Option<String>,
    /// Sex id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub sex_id: Option<i64>,
    /// Birth date `YYYY-MM-DD`; `0` or empty in the samples means unknown.
    #[serde(default, deserialize_with = "lenient_date_text")]
    pub birth_date: Option<String>,
    /// Discount, percent.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub discount: Option<f64>,
    /// Visits count.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub visits: Option<i64>,
    /// Money spent.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub spent: Option<f64>,
    /// Balance.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub balance: Option<f64>,
    /// When the client last changed, as given.
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_change_date: Option<String>,
}

/// The staff member of a record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiStaff {
    /// Staff id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub id: Option<i64>,
    /// Name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
}

/// One service of a record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiService {
    /// Service id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub id: Option<i64>,
    /// Title.
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: Option<String>,
    /// Cost.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub cost: Option<f64>,
    /// Amount.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub amount: Option<f64>,
}

/// The client summary inside a record.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiRecordClient {
    /// Client id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub id: Option<i64>,
    /// Name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Phone as text.
    #[serde(default, deserialize_with = "lenient_string")]
    pub phone: Option<String>,
    /// E-mail.
    #[serde(default, deserialize_with = "lenient_string")]
    pub email: Option<String>,
}

/// A record (appointment) as the API gives it. `id` and one of `date` or
/// `datetime` are required.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ApiRecord {
    /// Record id.
    #[serde(deserialize_with = "lenient_id")]
    pub id: i64,
    /// Company id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub company_id: Option<i64>,
    /// Staff id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub staff_id: Option<i64>,
    /// Staff member.
    #[serde(default, deserialize_with = "lenient_object")]
    pub staff: Option<ApiStaff>,
    /// Services.
    #[serde(default, deserialize_with = "lenient_list")]
    pub services: Vec<ApiService>,
    /// Client, or none for a walk-in.
    #[serde(default, deserialize_with = "lenient_object")]
    pub client: Option<ApiRecordClient>,
    /// Local visit start, `YYYY-MM-DD HH:MM:SS`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub date: Option<String>,
    /// Visit start, ISO 8601 with offset.
    #[serde(default, deserialize_with = "lenient_string")]
    pub datetime: Option<String>,
    /// Creation time.
    #[serde(default, deserialize_with = "lenient_string")]
    pub create_date: Option<String>,
    /// Length in seconds.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub seance_length: Option<i64>,
    /// 2 confirmed, 1 came, 0 waiting, -1 no-show.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub attendance: Option<i64>,
    /// Visit id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub visit_id: Option<i64>,
    /// Deleted at the source.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub deleted: bool,
    /// When it last changed, as given.
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_change_date: Option<String>,
    /// Comment.
    #[serde(default, deserialize_with = "lenient_string")]
    pub comment: Option<String>,
}

impl ApiRecord {
    /// The local visit day: the date part of `date`, else `datetime` in `tz`.
    pub fn local_day(&self, tz: Tz) -> Option<NaiveDate> {
        if let Some(d) = self.date.as_deref().and_then(|d| d.get(..10)) {
            if let Ok(day) = NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                return Some(day);
            }
        }
        self.starts_at(tz)
            .map(|t| t.with_timezone(&tz).date_naive())
    }

    /// The visit start in UTC: `datetime`, else `date` read in `tz`.
    pub fn starts_at(&self, tz: Tz) -> Option<DateTime<Utc>> {
        self.datetime
            .as_deref()
            .and_then(|t| parse_api_time(t, tz))
            .or_else(|| self.date.as_deref().and_then(|t| parse_api_time(t, tz)))
    }
}

/// Parses the API's time forms: RFC 3339, `+0300` offsets, or local
/// `YYYY-MM-DD HH:MM:SS` read in `tz`.
pub fn parse_api_time(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(text, fmt) {
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}

/// A raw record object into a core record: unit = local visit day,
/// occurred_at = start in UTC, deleted = `deleted`, hash without
/// [`VOLATILE_FIELDS`].
pub fn record_from_json(value: Value, tz: Tz) -> sync_core::Result<Record> {
    let typed: ApiRecord =
        serde_json::from_value(value.clone()).map_err(|e| SyncError::BadData {
            message: format!("a record could not be read: {e}"),
            source: Some(Box::new(e)),
        })?;
    let day = typed.local_day(tz).ok_or_else(|| {
        SyncError::bad_data(format!(
            "record {} has no readable date or datetime",
            typed.id
        ))
    })?;
    let mut record = Record::with_volatile(
        RECORD_ENTITY,
        typed.id.to_string(),
        Unit::Day(day),
        value,
        VOLATILE_FIELDS,
    )
    .deleted(typed.deleted);
    if let Some(at) = typed.starts_at(tz) {
        record = record.occurred_at(at);
    }
    Ok(record)
}

/// A raw client object into a core record: unit = the client id.
pub fn client_from_json(value: Value) -> sync_core::Result<Record> {
    let typed: ApiClient =
        serde_json::from_value(value.clone()).map_err(|e| SyncError::BadData {
            message: format!("a client could not be read: {e}"),
            source: Some(Box::new(e)),
        })?;
    Ok(Record::with_volatile(
        CLIENT_ENTITY,
        typed.id.to_string(),
        Unit::Key(typed.id),
        value,
        VOLATILE_FIELDS,
    ))
}

/// A service of the company's catalogue (`GET /services/{company}`). Only
/// `id` is required.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct CatalogueService {
    /// Service id (records name it in `services[].id`).
    #[serde(deserialize_with = "lenient_id")]
    pub id: i64,
    /// Title.
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: Option<String>,
    /// Category id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub category_id: Option<i64>,
    /// Lowest price.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub price_min: Option<f64>,
    /// Highest price.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub price_max: Option<f64>,
    /// Length in seconds.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub duration: Option<i64>,
    /// Bookable (an inactive service stays listed).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub active: bool,
}

/// A service category (`GET /service_categories/{company}`). Only `id` is
/// required.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct CatalogueCategory {
    /// Category id (services name it in `category_id`).
    #[serde(deserialize_with = "lenient_id")]
    pub id: i64,
    /// Title.
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: Option<String>,
}

/// A staff member's position.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StaffPosition {
    /// Position id.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub id: Option<i64>,
    /// Title.
    #[serde(default, deserialize_with = "lenient_string")]
    pub title: Option<String>,
}

/// A staff member (`GET /staff/{company}`). Fired and hidden staff are kept
/// (old visits name them), flagged. Only `id` is required.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct CatalogueStaff {
    /// Staff id (records name it in `staff_id`).
    #[serde(deserialize_with = "lenient_id")]
    pub id: i64,
    /// Name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: Option<String>,
    /// Specialization.
    #[serde(default, deserialize_with = "lenient_string")]
    pub specialization: Option<String>,
    /// Position.
    #[serde(default, deserialize_with = "lenient_object")]
    pub position: Option<StaffPosition>,
    /// No longer works there.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub fired: bool,
    /// Hidden from online booking.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub hidden: bool,
}

/// A raw catalogue object of `entity` ([`SERVICE_ENTITY`],
/// [`SERVICE_CATEGORY_ENTITY`] or [`STAFF_ENTITY`]) into a core record:
/// unit = its id. The payload is the object as served.
pub fn catalogue_item_from_json(entity: &str, value: Value) -> sync_core::Result<Record> {
    fn read<T: serde::de::DeserializeOwned>(entity: &str, value: &Value) -> sync_core::Result<T> {
        serde_json::from_value(value.clone()).map_err(|e| SyncError::BadData {
            message: format!("a {entity} could not be read: {e}"),
            source: Some(Box::new(e)),
        })
    }
    let id = match entity {
        SERVICE_ENTITY => read::<CatalogueService>(entity, &value)?.id,
        SERVICE_CATEGORY_ENTITY => read::<CatalogueCategory>(entity, &value)?.id,
        STAFF_ENTITY => read::<CatalogueStaff>(entity, &value)?.id,
        other => {
            return Err(SyncError::invalid_input(format!(
                "{other} is not a catalogue entity"
            )))
        }
    };
    Ok(Record::with_volatile(
        entity,
        id.to_string(),
        Unit::Key(id),
        value,
        VOLATILE_FIELDS,
    ))
}

// ------------------------------------------------------------ lenient serde

fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_i64(&v).ok_or_else(|| serde::de::Error::custom(format!("id is not an integer: {v}")))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(value_to_i64(&Value::deserialize(d)?))
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', ".").parse().ok(),
        _ => None,
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn lenient_date_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() && s != "0" && !s.starts_with("0000") => Some(s),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.trim(), "1" | "true" | "True" | "TRUE"),
        _ => false,
    })
}

fn lenient_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    // PHP sends an empty object as `[]`; anything but an object is "none".
    match Value::deserialize(d)? {
        v @ Value::Object(_) => Ok(serde_json::from_value(v).ok()),
        _ => Ok(None),
    }
}

fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Value::deserialize(d)? {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MSK: Tz = chrono_tz::Europe::Moscow;

    #[test]
    fn record_mapping_takes_the_local_day_and_utc_start() {
        let v = json!({
            "id": 7, "date": "2024-03-01 00:30:00", "datetime": "2024-03-01T00:30:00+03:00",
            "deleted": false, "last_change_date": "2024-02-01T10:00:00+0300",
            "client": null, "services": [{"id": 1, "title": "x", "cost": "1500.50", "amount": 1}]
        });
        let r = record_from_json(v.clone(), MSK).unwrap();
        assert_eq!(r.entity, "record");
        assert_eq!(r.external_id, "7");
        assert_eq!(
            r.unit,
            Unit::Day(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap())
        );
        assert_eq!(
            r.occurred_at.unwrap().to_rfc3339(),
            "2024-02-29T21:30:00+00:00"
        );
        assert!(!r.deleted);
        assert_eq!(r.payload, v);
        let typed: ApiRecord = serde_json::from_value(v).unwrap();
        assert_eq!(typed.services[0].cost, Some(1500.5));
    }

    #[test]
    fn volatile_fields_do_not_change_the_hash() {
        let a = json!({"id": "7", "date": "2024-03-01 10:00:00", "last_change_date": "x", "comment": "a"});
        let mut b = a.clone();
        b["last_change_date"] = json!("y");
        let mut c = a.clone();
        c["comment"] = json!("b");
        let h = |v: &Value| record_from_json(v.clone(), MSK).unwrap().hash;
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
    }

    #[test]
    fn lenient_types_and_missing_fields() {
        // Numbers as strings, deleted as 1, client as [], no datetime.
        let v = json!({"id": 9, "date": "2024-01-02 10:00:00", "deleted": 1, "client": [], "staff": []});
        let r = record_from_json(v, MSK).unwrap();
        assert!(r.deleted);
        assert_eq!(
            r.occurred_at.unwrap().to_rfc3339(),
            "2024-01-02T07:00:00+00:00"
        );
        let c = json!({"id": "12", "phone": 79161234567u64, "birth_date": 0});
        let typed: ApiClient = serde_json::from_value(c.clone()).unwrap();
        assert_eq!(typed.phone.as_deref(), Some("79161234567"));
        assert_eq!(typed.birth_date, None);
        let r = client_from_json(c).unwrap();
        assert_eq!((r.unit, r.external_id.as_str()), (Unit::Key(12), "12"));
    }

    #[test]
    fn unreadable_records_are_bad_data() {
        for v in [
            json!({"date": "2024-01-01 10:00:00"}),
            json!({"id": 1}),
            json!({"id": 1, "date": "soon"}),
            json!([1]),
        ] {
            let e = record_from_json(v, MSK).unwrap_err();
            assert_eq!(e.kind(), "bad_data", "{e}");
        }
        assert_eq!(
            client_from_json(json!({"id": "x"})).unwrap_err().kind(),
            "bad_data"
        );
    }

    #[test]
    fn catalogue_items_are_read_leniently() {
        let staff = json!({"id": "5", "name": "Anna", "fired": 1, "hidden": "0",
            "position": [], "rating": "4.5"});
        let r = catalogue_item_from_json(STAFF_ENTITY, staff.clone()).unwrap();
        assert_eq!((r.entity.as_str(), r.external_id.as_str()), ("staff", "5"));
        assert_eq!(r.unit, Unit::Key(5));
        assert_eq!(r.payload, staff);
        let typed: CatalogueStaff = serde_json::from_value(staff).unwrap();
        assert!(typed.fired && !typed.hidden && typed.position.is_none());
        let service = json!({"id": 7, "title": "Cut", "price_min": "1500,5", "active": true});
        let typed: CatalogueService = serde_json::from_value(service.clone()).unwrap();
        assert_eq!(typed.price_min, Some(1500.5));
        assert!(catalogue_item_from_json(SERVICE_ENTITY, service).is_ok());
        for (entity, v) in [
            (SERVICE_CATEGORY_ENTITY, json!({"title": "no id"})),
            (SERVICE_ENTITY, json!({"id": "x"})),
            (STAFF_ENTITY, json!("not an object")),
        ] {
            let e = catalogue_item_from_json(entity, v).unwrap_err();
            assert_eq!(e.kind(), "bad_data", "{e}");
            assert!(e.to_string().contains(entity), "{e}");
        }
        assert_eq!(
            catalogue_item_from_json("client", json!({"id": 1}))
                .unwrap_err()
                .kind(),
            "invalid_input"
        );
    }

    #[test]
    fn api_times() {
        let t = |s| parse_api_time(s, MSK).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2024-05-01T10:00:00+0300").as_deref(),
            Some("2024-05-01T07:00:00+00:00")
        );
        assert_eq!(
            t("2024-05-01T10:00:00+03:00").as_deref(),
            Some("2024-05-01T07:00:00+00:00")
        );
        assert_eq!(
            t("2024-05-01 10:00:00").as_deref(),
            Some("2024-05-01T07:00:00+00:00")
        );
        assert_eq!(t("yesterday"), None);
    }
}
