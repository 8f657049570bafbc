//! Mutations of one company's data, for delta tests: add, edit and remove
//! clients, records, services, categories and staff, keeping the lists
//! coherent (a record names existing staff, services and clients when it is
//! written; later removals leave old references in place, as in life).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, NaiveTime, Utc};
use serde_json::{json, Map, Value};

use super::data::{fmt_compact, fmt_iso, id_of, local, ClientRow, CompanyData, Entity, RecordRow};
use super::webhooks::WebhookEvent;
use super::{EventStatus, MutationError, Resource};

type Obj = Map<String, Value>;

/// Which fields a mutation wrote: `None` for an addition (all of them).
type Touched<'a> = Option<&'a BTreeSet<String>>;

fn object(v: Value) -> Result<Obj, MutationError> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        other => Err(MutationError::Invalid(format!(
            "fields must be a JSON object, not {other}"
        ))),
    }
}

/// Top-level merge; `id` is never taken from a patch.
fn merge(base: &mut Obj, patch: Obj) {
    for (k, v) in patch {
        if k != "id" {
            base.insert(k, v);
        }
    }
}

fn wrote(touched: Touched<'_>, obj: &Obj, key: &str) -> bool {
    obj.contains_key(key) && touched.is_none_or(|t| t.contains(key))
}

fn invalid(msg: impl Into<String>) -> MutationError {
    MutationError::Invalid(msg.into())
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

fn position_in<T>(rows: &[T], id: i64, key: impl Fn(&T) -> i64) -> Option<usize> {
    rows.iter().position(|r| key(r) == id)
}

impl CompanyData {
    fn catalogue_mut(&mut self, resource: Resource) -> Option<&mut Vec<Entity>> {
        match resource {
            Resource::Service => Some(&mut self.services),
            Resource::ServiceCategory => Some(&mut self.categories),
            Resource::Staff => Some(&mut self.staff),
            Resource::Client | Resource::Record => None,
        }
    }

    fn not_found(&self, resource: Resource, id: i64) -> MutationError {
        MutationError::NotFound {
            company: self.id,
            resource,
            id,
        }
    }

    /// Adds an entity made of defaults overlaid with `fields`; returns it as
    /// served.
    pub(crate) fn add(
        &mut self,
        resource: Resource,
        fields: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, MutationError> {
        let fields = object(fields)?;
        match resource {
            Resource::Client => {
                let id = self.next_ids.client;
                let mut obj = self.default_client(id);
                merge(&mut obj, fields);
                let row = self.client_row(id, obj, now);
                let value = row.value.clone();
                let at = self.clients.partition_point(|c| c.id < id);
                self.clients.insert(at, row);
                self.next_ids.client += 1;
                Ok(value)
            }
            Resource::Record => {
                let id = self.next_ids.record;
                let mut obj = self.default_record(id, &fields, now);
                merge(&mut obj, fields);
                let row = self.record_row(id, obj, None, None, now)?;
                let value = row.value.clone();
                self.insert_record(row);
                self.next_ids.record += 1;
                Ok(value)
            }
            _ => {
                let id = match resource {
                    Resource::Service => self.next_ids.service,
                    Resource::ServiceCategory => self.next_ids.category,
                    _ => self.next_ids.staff,
                };
                let mut obj = self.default_entity(resource, id);
                merge(&mut obj, fields);
                let value = self.check_entity(resource, id, obj, None)?;
                match resource {
                    Resource::Service => self.next_ids.service += 1,
                    Resource::ServiceCategory => self.next_ids.category += 1,
                    _ => self.next_ids.staff += 1,
                }
                if let Some(list) = self.catalogue_mut(resource) {
                    let at = list.partition_point(|e| e.id < id);
                    list.insert(
                        at,
                        Entity {
                            id,
                            value: value.clone(),
                        },
                    );
                }
                Ok(value)
            }
        }
    }

    /// Overlays `patch` on one entity (its `id` stays); clients and records
    /// get `last_change_date` = `now`. Returns it as served.
    pub(crate) fn update(
        &mut self,
        resource: Resource,
        id: i64,
        patch: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, MutationError> {
        let patch = object(patch)?;
        let touched: BTreeSet<String> = patch.keys().cloned().collect();
        match resource {
            Resource::Client => {
                let i = self
                    .clients
                    .binary_search_by_key(&id, |r| r.id)
                    .map_err(|_| self.not_found(resource, id))?;
                let mut obj = self.clients[i]
                    .value
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                merge(&mut obj, patch);
                let row = self.client_row(id, obj, now);
                let value = row.value.clone();
                self.clients[i] = row;
                Ok(value)
            }
            Resource::Record => {
                let i = position_in(&self.records, id, |r| r.id)
                    .ok_or_else(|| self.not_found(resource, id))?;
                let old = self.records[i].clone();
                let mut obj = old.value.as_object().cloned().unwrap_or_default();
                merge(&mut obj, patch);
                let row = self.record_row(id, obj, Some(&touched), Some(&old), now)?;
                let value = row.value.clone();
                self.records.remove(i);
                self.insert_record(row);
                Ok(value)
            }
            _ => {
                let i = position_in(self.catalogue(resource), id, |e| e.id)
                    .ok_or_else(|| self.not_found(resource, id))?;
                let mut obj = self.catalogue(resource)[i]
                    .value
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                merge(&mut obj, patch);
                let value = self.check_entity(resource, id, obj, Some(&touched))?;
                if let Some(list) = self.catalogue_mut(resource) {
                    list[i].value = value.clone();
                }
                Ok(value)
            }
        }
    }

    /// Removes one entity and returns it as it was last served. A record is
    /// not removed but marked `deleted` (as the API does; `with_deleted=1`
    /// still shows it); a removed staff member also leaves the `staff` lists
    /// of services and categories.
    pub(crate) fn remove(
        &mut self,
        resource: Resource,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Value, MutationError> {
        match resource {
            Resource::Client => {
                let i = self
                    .clients
                    .binary_search_by_key(&id, |r| r.id)
                    .map_err(|_| self.not_found(resource, id))?;
                Ok(self.clients.remove(i).value)
            }
            Resource::Record => self.update(resource, id, json!({"deleted": true}), now),
            _ => {
                let i = position_in(self.catalogue(resource), id, |e| e.id)
                    .ok_or_else(|| self.not_found(resource, id))?;
                let gone = match self.catalogue_mut(resource) {
                    Some(list) => list.remove(i).value,
                    None => return Err(self.not_found(resource, id)),
                };
                if resource == Resource::Staff {
                    for e in self.services.iter_mut().chain(self.categories.iter_mut()) {
                        if let Some(list) = e.value.get_mut("staff").and_then(Value::as_array_mut) {
                            list.retain(|s| id_of(s) != Some(id));
                        }
                    }
                }
                Ok(gone)
            }
        }
    }

    // ------------------------------------------------------------ clients

    fn default_client(&self, id: i64) -> Obj {
        let mut obj = Map::new();
        for (k, v) in [
            ("id", json!(id)),
            ("name", json!("Новый")),
            ("surname", json!("Клиент")),
            ("patronymic", json!("")),
            (
                "phone",
                json!(format!("+7950{:07}", id.rem_euclid(10_000_000))),
            ),
            ("email", json!(format!("new{id}@example.test"))),
            ("sex_id", json!(0)),
            ("birth_date", json!(0)),
            ("discount", json!(0)),
            ("comment", json!("")),
            ("visits", json!(0)),
            ("spent", json!(0)),
            ("balance", json!(0)),
            ("categories", json!([])),
            ("custom_fields", json!([])),
        ] {
            obj.insert(k.into(), v);
        }
        obj
    }

    fn client_row(&self, id: i64, mut obj: Obj, now: DateTime<Utc>) -> ClientRow {
        obj.insert("id".into(), json!(id));
        obj.insert("last_change_date".into(), json!(fmt_compact(now, self.tz)));
        ClientRow {
            id,
            last_change: now,
            value: Value::Object(obj),
        }
    }

    // ------------------------------------------------------------ records

    fn default_record(&self, id: i64, fields: &Obj, now: DateTime<Utc>) -> Obj {
        let staff = self
            .staff
            .iter()
            .find(|e| e.value["fired"] != json!(1))
            .or(self.staff.first())
            .map(|e| e.id);
        let service = self
            .services
            .iter()
            .find(|e| e.value["active"] != json!(0))
            .or(self.services.first());
        let mut obj = Map::new();
        if !fields.contains_key("staff") {
            obj.insert("staff_id".into(), json!(staff));
        }
        let services: Vec<Value> = service.map(|s| json!({"id": s.id})).into_iter().collect();
        let length: i64 = service
            .and_then(|s| s.value["duration"].as_i64())
            .unwrap_or(3600);
        for (k, v) in [
            ("services", json!(services)),
            ("client", Value::Null),
            (
                "date",
                json!(self
                    .last_day
                    .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN))
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()),
            ),
            ("create_date", json!(fmt_compact(now, self.tz))),
            ("seance_length", json!(length)),
            ("attendance", json!(0)),
            ("visit_id", json!(id + 900_000_000)),
            ("deleted", json!(false)),
            ("comment", json!("")),
        ] {
            obj.insert(k.into(), v);
        }
        obj
    }

    /// Validates and completes a record whose fields are `obj`; only the
    /// `touched` fields are checked against the lists (an edit of an old
    /// record keeps its references to since-removed staff or services).
    fn record_row(
        &self,
        id: i64,
        mut obj: Obj,
        touched: Touched<'_>,
        old: Option<&RecordRow>,
        now: DateTime<Utc>,
    ) -> Result<RecordRow, MutationError> {
        let tz = self.tz;
        // Staff: `staff_id` first, then `staff.id`.
        let staff_src = if wrote(touched, &obj, "staff_id") {
            obj.get("staff_id").cloned()
        } else if wrote(touched, &obj, "staff") {
            obj.get("staff").cloned()
        } else {
            None
        };
        let staff_id = match (staff_src, old) {
            (Some(v), _) => {
                let sid = id_of(&v).ok_or_else(|| invalid("staff_id must be an integer"))?;
                let staff = self
                    .staff
                    .iter()
                    .find(|e| e.id == sid)
                    .ok_or_else(|| invalid(format!("no staff {sid} in company {}", self.id)))?;
                obj.insert("staff_id".into(), json!(sid));
                obj.insert(
                    "staff".into(),
                    json!({"id": sid, "name": staff.value["name"]}),
                );
                sid
            }
            (None, Some(o)) => o.staff_id,
            (None, None) => return Err(invalid("staff_id is required")),
        };

        if wrote(touched, &obj, "services") {
            let items = obj
                .get("services")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("services must be a list"))?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let sid = id_of(item).ok_or_else(|| invalid("a service needs an id"))?;
                let svc =
                    self.services.iter().find(|e| e.id == sid).ok_or_else(|| {
                        invalid(format!("no service {sid} in company {}", self.id))
                    })?;
                let given = |k: &str| item.get(k).filter(|v| !v.is_null()).cloned();
                out.push(json!({
                    "id": sid,
                    "title": given("title").unwrap_or_else(|| svc.value["title"].clone()),
                    "cost": given("cost").unwrap_or_else(|| svc.value["price_min"].clone()),
                    "amount": given("amount").unwrap_or_else(|| json!(1)),
                }));
            }
            obj.insert("services".into(), Value::Array(out));
        }

        let client_src = if wrote(touched, &obj, "client_id") {
            Some(obj.get("client_id").cloned().unwrap_or(Value::Null))
        } else if wrote(touched, &obj, "client") {
            Some(obj.get("client").cloned().unwrap_or(Value::Null))
        } else {
            None
        };
        obj.remove("client_id");
        let client_id = match (client_src, old) {
            (Some(Value::Null), _) => {
                obj.insert("client".into(), Value::Null);
                None
            }
            (Some(v), _) => {
                let cid = id_of(&v).ok_or_else(|| invalid("client id must be an integer"))?;
                let c = self
                    .clients
                    .binary_search_by_key(&cid, |r| r.id)
                    .map(|i| &self.clients[i].value)
                    .map_err(|_| invalid(format!("no client {cid} in company {}", self.id)))?;
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                obj.insert(
                    "client".into(),
                    json!({
                        "id": cid,
                        "name": format!("{} {}", text(&c["name"]), text(&c["surname"])).trim().to_string(),
                        "phone": text(&c["phone"]),
                        "email": text(&c["email"]),
                    }),
                );
                Some(cid)
            }
            (None, Some(o)) => o.client_id,
            (None, None) => None,
        };

        let when = obj
            .get("date")
            .and_then(Value::as_str)
            .and_then(parse_local)
            .ok_or_else(|| invalid("date must be \"YYYY-MM-DD HH:MM:SS\""))?;
        let datetime = local(tz, when.date(), when.time());
        obj.insert(
            "date".into(),
            json!(when.format("%Y-%m-%d %H:%M:%S").to_string()),
        );
        obj.insert("datetime".into(), json!(fmt_iso(datetime, tz)));
        let deleted = match obj.get("deleted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
            _ => false,
        };
        obj.insert("deleted".into(), json!(deleted));
        obj.insert("id".into(), json!(id));
        obj.insert("company_id".into(), json!(self.id as i64));
        obj.insert("last_change_date".into(), json!(fmt_compact(now, tz)));
        Ok(RecordRow {
            id,
            client_id,
            staff_id,
            date: when.date(),
            datetime,
            created_day: old.map_or_else(|| now.with_timezone(&tz).date_naive(), |o| o.created_day),
            last_change: now,
            deleted,
            value: Value::Object(obj),
        })
    }

    fn insert_record(&mut self, row: RecordRow) {
        let key = (row.datetime, row.id);
        let at = self.records.partition_point(|r| (r.datetime, r.id) < key);
        self.records.insert(at, row);
    }

    // ------------------------------------------------------------ catalogue

    fn default_entity(&self, resource: Resource, id: i64) -> Obj {
        let value = match resource {
            Resource::Service => json!({
                "id": id,
                "title": format!("Новая услуга {id}"),
                "category_id": self.categories.first().map_or(0, |c| c.id),
                "price_min": 1000,
                "price_max": 1000,
                "duration": 3600,
                "active": 1,
                "staff": [],
                "weight": 0,
                "api_id": "",
            }),
            Resource::ServiceCategory => json!({
                "id": id,
                "title": format!("Новая категория {id}"),
                "api_id": "",
                "weight": 0,
                "staff": [],
            }),
            _ => json!({
                "id": id,
                "name": format!("Новый сотрудник {id}"),
                "specialization": "",
                "position": self.staff.first().map_or(Value::Null, |s| s.value["position"].clone()),
                "avatar": "",
                "rating": 0,
                "fired": 0,
                "hidden": 0,
                "status": 0,
                "api_id": "",
            }),
        };
        object(value).unwrap_or_default()
    }

    fn staff_ids(&self, list: &Value, what: &str) -> Result<Vec<(i64, Value)>, MutationError> {
        let items = list
            .as_array()
            .ok_or_else(|| invalid(format!("{what} must be a list")))?;
        items
            .iter()
            .map(|item| {
                let sid =
                    id_of(item).ok_or_else(|| invalid(format!("{what}: ids are integers")))?;
                if self.staff.iter().any(|e| e.id == sid) {
                    Ok((sid, item.clone()))
                } else {
                    Err(invalid(format!("no staff {sid} in company {}", self.id)))
                }
            })
            .collect()
    }

    fn check_entity(
        &self,
        resource: Resource,
        id: i64,
        mut obj: Obj,
        touched: Touched<'_>,
    ) -> Result<Value, MutationError> {
        obj.insert("id".into(), json!(id));
        match resource {
            Resource::Service => {
                if wrote(touched, &obj, "category_id") {
                    let cid = obj
                        .get("category_id")
                        .and_then(id_of)
                        .ok_or_else(|| invalid("category_id must be an integer"))?;
                    if cid != 0 && !self.categories.iter().any(|c| c.id == cid) {
                        return Err(invalid(format!("no category {cid} in company {}", self.id)));
                    }
                    obj.insert("category_id".into(), json!(cid));
                }
                if wrote(touched, &obj, "staff") {
                    let duration = obj.get("duration").cloned().unwrap_or(json!(3600));
                    let staff = self.staff_ids(&obj["staff"], "staff")?;
                    let staff: Vec<Value> = staff
                        .into_iter()
                        .map(|(sid, item)| {
                            let len = item
                                .get("seance_length")
                                .cloned()
                                .unwrap_or_else(|| duration.clone());
                            json!({"id": sid, "seance_length": len})
                        })
                        .collect();
                    obj.insert("staff".into(), Value::Array(staff));
                }
            }
            Resource::ServiceCategory => {
                if wrote(touched, &obj, "staff") {
                    let staff = self.staff_ids(&obj["staff"], "staff")?;
                    let ids: Vec<i64> = staff.into_iter().map(|(sid, _)| sid).collect();
                    obj.insert("staff".into(), json!(ids));
                }
            }
            _ => {
                if wrote(touched, &obj, "position")
                    && !matches!(obj.get("position"), Some(Value::Object(_) | Value::Null))
                {
                    return Err(invalid("position must be an object {id, title}"));
                }
            }
        }
        Ok(Value::Object(obj))
    }

    // ------------------------------------------------------------ events

    /// Events for records changed by a bulk change: `delete` for those the
    /// change deleted (not in `deleted_before`), `update` for the others.
    pub(crate) fn record_events(
        &self,
        ids: &[i64],
        deleted_before: &HashSet<i64>,
    ) -> Vec<WebhookEvent> {
        let by_id: HashMap<i64, &RecordRow> = self.records.iter().map(|r| (r.id, r)).collect();
        ids.iter()
            .filter_map(|id| by_id.get(id))
            .map(|r| {
                let status = if r.deleted && !deleted_before.contains(&r.id) {
                    EventStatus::Delete
                } else {
                    EventStatus::Update
                };
                WebhookEvent::new(self.id, Resource::Record, r.id, status, r.value.clone())
            })
            .collect()
    }

    /// Ids of the records deleted now.
    pub(crate) fn deleted_records(&self) -> HashSet<i64> {
        self.records
            .iter()
            .filter(|r| r.deleted)
            .map(|r| r.id)
            .collect()
    }

    /// `update` events for clients, by id.
    pub(crate) fn client_events(&self, ids: &[i64]) -> Vec<WebhookEvent> {
        ids.iter()
            .filter_map(|&id| self.find(Resource::Client, id).map(|v| (id, v)))
            .map(|(id, v)| WebhookEvent::new(self.id, Resource::Client, id, EventStatus::Update, v))
            .collect()
    }
}
