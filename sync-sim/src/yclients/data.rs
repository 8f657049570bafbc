//! Seeded, deterministic company data: clients, records and the catalogue
//! (services, categories, staff), as the API serves them (raw JSON), plus the
//! few typed fields the filters need.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::Resource;

const FIRST_NAMES: &[&str] = &[
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Ирина",
    "Наталья",
    "Дарья",
    "Светлана",
    "Алексей",
    "Иван",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Павел",
    "Николай",
    "Kate",
    "John",
    "Léa",
];
const SURNAMES: &[&str] = &[
    "Иванова",
    "Смирнова",
    "Кузнецова",
    "Попова",
    "Соколова",
    "Лебедева",
    "Козлов",
    "Новиков",
    "Морозов",
    "Петров",
    "Волков",
    "Smith",
    "O'Brien",
    "Müller",
];
const PATRONYMICS: &[&str] = &[
    "Александровна",
    "Сергеевна",
    "Ивановна",
    "Петрович",
    "Олегович",
    "",
];
const STAFF_NAMES: &[&str] = &[
    "Алина Мастер",
    "Борис Барбер",
    "Вера Стилист",
    "Глеб Колорист",
    "Дина Маникюр",
    "Егор Массаж",
    "Жанна Косметолог",
    "Зоя Брови",
];
/// Services: title, price, index of the category, duration in seconds.
const SERVICES: &[(&str, i64, usize, i64)] = &[
    ("Стрижка женская", 1800, 0, 3600),
    ("Стрижка мужская", 1200, 0, 1800),
    ("Окрашивание", 4500, 0, 7200),
    ("Маникюр", 1500, 1, 3600),
    ("Педикюр", 2200, 1, 3600),
    ("Массаж спины", 2500, 2, 3600),
    ("Укладка", 1000, 0, 1800),
    ("Брови", 800, 3, 1800),
    ("Чистка лица", 3000, 3, 3600),
    ("Бритьё", 900, 0, 1800),
    ("Тонирование", 2700, 0, 5400),
    ("Детская стрижка", 700, 0, 1800),
];
const CATEGORIES: &[&str] = &[
    "Парикмахерские услуги",
    "Ногтевой сервис",
    "Массаж",
    "Уход за лицом",
];
/// Specialisation of each of [`STAFF_NAMES`].
const SPECIALIZATIONS: &[&str] = &[
    "Парикмахер-универсал",
    "Барбер",
    "Стилист",
    "Колорист",
    "Мастер маникюра",
    "Массажист",
    "Косметолог",
    "Бровист",
];
const POSITIONS: &[&str] = &["Мастер", "Старший мастер"];
const COMPANY_NAMES: &[&str] = &[
    "Аврора",
    "Бархат",
    "Вереск",
    "Гармония",
    "Лотос",
    "Ирис",
    "Клевер",
    "Шарм",
];
const COMMENTS: &[&str] = &[
    "",
    "",
    "",
    "",
    "Просила не опаздывать",
    "Аллергия на лак",
    "Первый визит",
    "VIP",
];

/// One client as served, with the typed fields filters need.
#[derive(Clone, Debug)]
pub(crate) struct ClientRow {
    pub(crate) id: i64,
    pub(crate) last_change: DateTime<Utc>,
    pub(crate) value: Value,
}

/// One record (appointment) as served, with the typed fields filters need.
#[derive(Clone, Debug)]
pub(crate) struct RecordRow {
    pub(crate) id: i64,
    pub(crate) client_id: Option<i64>,
    pub(crate) staff_id: i64,
    /// Local day of the visit.
    pub(crate) date: NaiveDate,
    pub(crate) datetime: DateTime<Utc>,
    /// Local day of creation.
    pub(crate) created_day: NaiveDate,
    pub(crate) last_change: DateTime<Utc>,
    pub(crate) deleted: bool,
    pub(crate) value: Value,
}

/// One catalogue entry (service, category or staff member) as served.
#[derive(Clone, Debug)]
pub(crate) struct Entity {
    pub(crate) id: i64,
    pub(crate) value: Value,
}

/// The next id handed out for each kind of entity a mutation adds; ids are
/// never reused, even after a removal.
#[derive(Clone, Debug, Default)]
pub(crate) struct NextIds {
    pub(crate) client: i64,
    pub(crate) record: i64,
    pub(crate) service: i64,
    pub(crate) category: i64,
    pub(crate) staff: i64,
}

/// Everything one company holds.
#[derive(Clone, Debug)]
pub(crate) struct CompanyData {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) tz: Tz,
    /// The last day of generated records (where added records go by default).
    pub(crate) last_day: NaiveDate,
    /// Sorted by id.
    pub(crate) clients: Vec<ClientRow>,
    /// Sorted by (datetime, id).
    pub(crate) records: Vec<RecordRow>,
    /// Sorted by id.
    pub(crate) services: Vec<Entity>,
    /// Sorted by id.
    pub(crate) categories: Vec<Entity>,
    /// Sorted by id.
    pub(crate) staff: Vec<Entity>,
    pub(crate) next_ids: NextIds,
}

/// What to generate for one company.
pub(crate) struct GenSpec {
    pub(crate) seed: u64,
    pub(crate) company_id: u64,
    pub(crate) clients: usize,
    pub(crate) records: usize,
    pub(crate) first_day: NaiveDate,
    pub(crate) last_day: NaiveDate,
    pub(crate) tz: Tz,
}

/// `2024-05-01T10:00:00+0300`: the compact offset used by `create_date` and
/// `last_change_date` in the documentation samples.
pub(crate) fn fmt_compact(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%z")
        .to_string()
}

/// `2024-05-01T10:00:00+03:00`: the ISO form used by `datetime`.
pub(crate) fn fmt_iso(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

pub(crate) fn local(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    tz.from_local_datetime(&day.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        // A time inside a DST gap: the same wall time read as UTC is close enough.
        .unwrap_or_else(|| day.and_time(time).and_utc())
}

/// An id given as a number, a numeric string or an object with `id`.
pub(crate) fn id_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => o.get("id").and_then(id_of),
        _ => None,
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

fn phone_digits(rng: &mut StdRng) -> u64 {
    79_000_000_000 + rng.gen_range(0..1_000_000_000u64)
}

impl CompanyData {
    /// Every entity of `resource` as served (records: deleted ones too).
    pub(crate) fn list(&self, resource: Resource) -> Vec<Value> {
        match resource {
            Resource::Client => self.clients.iter().map(|r| r.value.clone()).collect(),
            Resource::Record => self.records.iter().map(|r| r.value.clone()).collect(),
            _ => self
                .catalogue(resource)
                .iter()
                .map(|e| e.value.clone())
                .collect(),
        }
    }

    /// One entity as served.
    pub(crate) fn find(&self, resource: Resource, id: i64) -> Option<Value> {
        match resource {
            Resource::Client => self
                .clients
                .binary_search_by_key(&id, |r| r.id)
                .ok()
                .map(|i| self.clients[i].value.clone()),
            Resource::Record => self
                .records
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.value.clone()),
            _ => self
                .catalogue(resource)
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.value.clone()),
        }
    }

    pub(crate) fn catalogue(&self, resource: Resource) -> &[Entity] {
        match resource {
            Resource::Service => &self.services,
            Resource::ServiceCategory => &self.categories,
            Resource::Staff => &self.staff,
            Resource::Client | Resource::Record => &[],
        }
    }

    /// Generates a company from `spec`; the same spec gives the same data.
    pub(crate) fn generate(spec: &GenSpec) -> Self {
        let mut rng =
            StdRng::seed_from_u64(spec.seed ^ spec.company_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let tz = spec.tz;
        let company = spec.company_id as i64;
        let end_of_data = local(
            tz,
            spec.last_day.succ_opt().unwrap_or(spec.last_day),
            NaiveTime::MIN,
        ) - Duration::seconds(1);
        let span_days = (spec.last_day - spec.first_day).num_days().max(0);

        // Clients: ids ascending with small gaps, unique across companies.
        struct Person {
            id: i64,
            name: String,
            surname: String,
            phone: u64,
            email: Option<String>,
        }
        let mut next_client = 5_000_000 + (company % 1000) * 10_000_000;
        let people: Vec<Person> = (0..spec.clients)
            .map(|i| {
                next_client += rng.gen_range(1..=4);
                let name = pick(&mut rng, FIRST_NAMES).to_string();
                let surname = pick(&mut rng, SURNAMES).to_string();
                let email =
                    (rng.gen_range(0..100) >= 20).then(|| format!("client{i}@example.test"));
                Person {
                    id: next_client,
                    name,
                    surname,
                    phone: phone_digits(&mut rng),
                    email,
                }
            })
            .collect();

        let staff: Vec<(i64, &str)> = STAFF_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (company * 100 + i as i64 + 1, *n))
            .collect();

        // Records.
        let mut visits = vec![0i64; people.len()];
        let mut spent = vec![0i64; people.len()];
        let mut next_record = 100_000_000 + (company % 1000) * 10_000_000;
        let mut records: Vec<RecordRow> = Vec::with_capacity(spec.records);
        for _ in 0..spec.records {
            next_record += rng.gen_range(1..=3);
            let id = next_record;
            let day = spec.first_day + Duration::days(rng.gen_range(0..=span_days));
            let slot = rng.gen_range(0..24u32); // 09:00 to 20:30, every 30 min
            let time =
                NaiveTime::from_hms_opt(9 + slot / 2, (slot % 2) * 30, 0).unwrap_or(NaiveTime::MIN);
            let datetime = local(tz, day, time);
            let created = datetime
                - Duration::days(rng.gen_range(0..30))
                - Duration::minutes(rng.gen_range(0..720));
            let latest_change = (datetime + Duration::days(1)).min(end_of_data).max(created);
            let last_change = created
                + Duration::seconds(rng.gen_range(0..=(latest_change - created).num_seconds()));
            let (staff_id, staff_name) = *pick(&mut rng, &staff);
            let n_services = if rng.gen_range(0..4) == 0 { 2 } else { 1 };
            let services: Vec<Value> = (0..n_services)
                .map(|_| {
                    let idx = rng.gen_range(0..SERVICES.len());
                    let (title, cost, _, _) = SERVICES[idx];
                    json!({"id": company * 1000 + idx as i64 + 1, "title": title, "cost": cost, "amount": 1})
                })
                .collect();
            let cost: i64 = services.iter().filter_map(|s| s["cost"].as_i64()).sum();
            let attendance: i64 = if day + Duration::days(1) < spec.last_day {
                match rng.gen_range(0..100) {
                    0..=79 => 1,
                    80..=86 => -1,
                    87..=94 => 2,
                    _ => 0,
                }
            } else if rng.gen_bool(0.5) {
                2
            } else {
                0
            };
            let deleted = rng.gen_range(0..100) < 2;
            let client_idx = (!people.is_empty() && rng.gen_range(0..100) >= 3)
                .then(|| rng.gen_range(0..people.len()));
            let client = match client_idx {
                Some(i) => {
                    let p = &people[i];
                    if !deleted && attendance == 1 {
                        visits[i] += 1;
                        spent[i] += cost;
                    }
                    json!({
                        "id": p.id,
                        "name": format!("{} {}", p.name, p.surname),
                        "phone": format!("+{}", p.phone),
                        "email": p.email.clone().unwrap_or_default(),
                    })
                }
                None => Value::Null,
            };
            let value = json!({
                "id": id,
                "company_id": company,
                "staff_id": staff_id,
                "staff": {"id": staff_id, "name": staff_name},
                "services": services,
                "client": client,
                "date": day.and_time(time).format("%Y-%m-%d %H:%M:%S").to_string(),
                "datetime": fmt_iso(datetime, tz),
                "create_date": fmt_compact(created, tz),
                "seance_length": 1800 * n_services + 900 * rng.gen_range(0..3),
                "attendance": attendance,
                "visit_id": id + 900_000_000,
                "deleted": deleted,
                "last_change_date": fmt_compact(last_change, tz),
                "comment": *pick(&mut rng, COMMENTS),
            });
            records.push(RecordRow {
                id,
                client_id: client_idx.map(|i| people[i].id),
                staff_id,
                date: day,
                datetime,
                created_day: created.with_timezone(&tz).date_naive(),
                last_change,
                deleted,
                value,
            });
        }
        records.sort_by_key(|r| (r.datetime, r.id));

        let clients = people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let last_change = end_of_data - Duration::minutes(rng.gen_range(0..(span_days.max(1) * 1440)));
                // Lenient types, as in the documentation samples.
                let phone = match rng.gen_range(0..100) {
                    0..=9 => json!(p.phone),
                    10..=14 => json!(""),
                    _ => json!(format!("+{}", p.phone)),
                };
                let birth_date = if rng.gen_range(0..100) < 15 {
                    json!(0)
                } else {
                    let d = NaiveDate::from_ymd_opt(rng.gen_range(1950..2005), rng.gen_range(1..=12), rng.gen_range(1..=28))
                        .unwrap_or_default();
                    json!(d.format("%Y-%m-%d").to_string())
                };
                let discount = [0, 0, 0, 5, 10][rng.gen_range(0..5)];
                let mut value = json!({
                    "id": p.id,
                    "name": p.name,
                    "surname": p.surname,
                    "patronymic": *pick(&mut rng, PATRONYMICS),
                    "phone": phone,
                    "sex_id": rng.gen_range(0..3),
                    "birth_date": birth_date,
                    "discount": discount,
                    "comment": *pick(&mut rng, COMMENTS),
                    "visits": visits[i],
                    "spent": spent[i],
                    "balance": if rng.gen_range(0..10) == 0 { -rng.gen_range(100..2000) } else { 0 },
                    "last_change_date": fmt_compact(last_change, tz),
                    "categories": if rng.gen_bool(0.2) { json!([{"id": 1, "title": "Постоянный"}]) } else { json!([]) },
                    "custom_fields": if rng.gen_bool(0.1) { json!({"source": "instagram"}) } else { json!([]) },
                });
                if let (Some(email), Some(obj)) = (&p.email, value.as_object_mut()) {
                    obj.insert("email".into(), json!(email));
                }
                ClientRow {
                    id: p.id,
                    last_change,
                    value,
                }
            })
            .collect();

        let name = COMPANY_NAMES[(spec.company_id % COMPANY_NAMES.len() as u64) as usize];
        let title = format!("Салон «{name}» №{}", spec.company_id);
        let mut data = Self {
            id: spec.company_id,
            title,
            tz,
            last_day: spec.last_day,
            clients,
            records,
            services: Vec::new(),
            categories: Vec::new(),
            staff: Vec::new(),
            next_ids: NextIds::default(),
        };
        data.generate_catalogue(spec, span_days);
        data.next_ids = NextIds {
            client: data
                .clients
                .iter()
                .map(|c| c.id)
                .max()
                .unwrap_or(next_client)
                + 1,
            record: data
                .records
                .iter()
                .map(|r| r.id)
                .max()
                .unwrap_or(next_record)
                + 1,
            service: data
                .services
                .iter()
                .map(|e| e.id)
                .max()
                .unwrap_or(company * 1000)
                + 1,
            category: data
                .categories
                .iter()
                .map(|e| e.id)
                .max()
                .unwrap_or(company * 10_000)
                + 1,
            staff: data
                .staff
                .iter()
                .map(|e| e.id)
                .max()
                .unwrap_or(company * 100)
                + 1,
        };
        data
    }

    /// Services, categories and staff, coherent with the records: every
    /// service and staff id a record names is in the lists. Uses its own
    /// generator, so the records and clients are what they were before the
    /// catalogue existed (except the fired master's late visits, below).
    ///
    /// One master is fired three quarters into the range: their visits after
    /// that day went to the next colleague, the older ones still name them.
    /// Another master is hidden (still working), one service is inactive.
    /// A service's `staff` are the masters who performed it in some record;
    /// a category's `staff` are the union over its services.
    fn generate_catalogue(&mut self, spec: &GenSpec, span_days: i64) {
        let company = spec.company_id as i64;
        let mut rng = StdRng::seed_from_u64(
            spec.seed ^ spec.company_id.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ 0x0CA7_A106,
        );
        let n = STAFF_NAMES.len();
        let staff_id = |i: usize| company * 100 + i as i64 + 1;
        let service_id = |i: usize| company * 1000 + i as i64 + 1;
        let category_id = |i: usize| company * 10_000 + i as i64 + 1;
        let fired = rng.gen_range(0..n);
        let hidden = (fired + 1 + rng.gen_range(0..n - 1)) % n;
        let inactive = rng.gen_range(0..SERVICES.len());

        let cutoff = spec.first_day + Duration::days(span_days * 3 / 4);
        let substitute = (fired + 1) % n;
        for r in &mut self.records {
            if r.staff_id == staff_id(fired) && r.date > cutoff {
                r.staff_id = staff_id(substitute);
                if let Some(obj) = r.value.as_object_mut() {
                    obj.insert("staff_id".into(), json!(r.staff_id));
                    obj.insert(
                        "staff".into(),
                        json!({"id": r.staff_id, "name": STAFF_NAMES[substitute]}),
                    );
                }
            }
        }

        let mut performed: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for r in &self.records {
            for s in r.value["services"].as_array().into_iter().flatten() {
                if let Some(id) = s["id"].as_i64() {
                    performed.entry(id).or_default().insert(r.staff_id);
                }
            }
        }

        self.staff = (0..n)
            .map(|i| {
                let id = staff_id(i);
                let position = i % POSITIONS.len();
                let rating = if rng.gen_range(0..5) == 0 {
                    json!(0)
                } else {
                    json!(f64::from(rng.gen_range(40..=50u32)) / 10.0)
                };
                Entity {
                    id,
                    value: json!({
                        "id": id,
                        "name": STAFF_NAMES[i],
                        "specialization": SPECIALIZATIONS[i % SPECIALIZATIONS.len()],
                        "position": {"id": company * 10 + position as i64 + 1, "title": POSITIONS[position]},
                        "avatar": format!("https://example.test/avatars/{id}.jpg"),
                        "rating": rating,
                        "fired": i32::from(i == fired),
                        "hidden": i32::from(i == hidden),
                        "status": 0,
                        "api_id": "",
                    }),
                }
            })
            .collect();

        self.services = SERVICES
            .iter()
            .enumerate()
            .map(|(i, &(title, cost, category, duration))| {
                let id = service_id(i);
                let staff: Vec<Value> = performed
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(|s| json!({"id": s, "seance_length": duration}))
                    .collect();
                Entity {
                    id,
                    value: json!({
                        "id": id,
                        "title": title,
                        "category_id": category_id(category),
                        "price_min": cost,
                        "price_max": cost + (i as i64 % 3) * 200,
                        "duration": duration,
                        "active": i32::from(i != inactive),
                        "staff": staff,
                        "weight": (SERVICES.len() - i) as i64,
                        "api_id": "",
                    }),
                }
            })
            .collect();

        self.categories = CATEGORIES
            .iter()
            .enumerate()
            .map(|(k, title)| {
                let id = category_id(k);
                let staff: BTreeSet<i64> = SERVICES
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.2 == k)
                    .flat_map(|(i, _)| performed.get(&service_id(i)).into_iter().flatten())
                    .copied()
                    .collect();
                Entity {
                    id,
                    value: json!({
                        "id": id,
                        "title": title,
                        "api_id": "",
                        "weight": (CATEGORIES.len() - k) as i64,
                        "staff": staff.into_iter().collect::<Vec<_>>(),
                    }),
                }
            })
            .collect();
    }

    /// Changes `fraction` of the records (content and `last_change_date`,
    /// set to `now`); about one in ten of them is deleted. Returns their ids.
    pub(crate) fn change_records(
        &mut self,
        fraction: f64,
        rng: &mut StdRng,
        now: DateTime<Utc>,
    ) -> Vec<i64> {
        let n = self.records.len();
        let k = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let mut ids = Vec::with_capacity(k);
        for i in sample(rng, n, k.min(n)).into_iter() {
            let tz = self.tz;
            let r = &mut self.records[i];
            let Some(obj) = r.value.as_object_mut() else {
                continue;
            };
            match rng.gen_range(0..10) {
                0 => {
                    r.deleted = true;
                    obj.insert("deleted".into(), json!(true));
                }
                1..=4 => {
                    let c = obj
                        .get("comment")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    obj.insert(
                        "comment".into(),
                        json!(format!("{c} (изменено)").trim().to_string()),
                    );
                }
                5..=7 => {
                    let a = obj.get("attendance").and_then(Value::as_i64).unwrap_or(0);
                    obj.insert("attendance".into(), json!(if a == 1 { -1 } else { 1 }));
                }
                _ => {
                    let s = obj
                        .get("seance_length")
                        .and_then(Value::as_i64)
                        .unwrap_or(1800);
                    obj.insert("seance_length".into(), json!(s + 900));
                }
            }
            r.last_change = now;
            obj.insert("last_change_date".into(), json!(fmt_compact(now, tz)));
            ids.push(r.id);
        }
        ids.sort_unstable();
        ids
    }

    /// Bumps `last_change_date` of `fraction` of the records without changing
    /// anything else (what a volatile-field-only change looks like).
    pub(crate) fn touch_records(
        &mut self,
        fraction: f64,
        rng: &mut StdRng,
        now: DateTime<Utc>,
    ) -> Vec<i64> {
        let n = self.records.len();
        let k = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let mut ids = Vec::with_capacity(k);
        for i in sample(rng, n, k.min(n)).into_iter() {
            let tz = self.tz;
            let r = &mut self.records[i];
            if let Some(obj) = r.value.as_object_mut() {
                r.last_change = now;
                obj.insert("last_change_date".into(), json!(fmt_compact(now, tz)));
                ids.push(r.id);
            }
        }
        ids.sort_unstable();
        ids
    }

    /// Changes `fraction` of the clients (comment, `last_change_date`).
    pub(crate) fn change_clients(
        &mut self,
        fraction: f64,
        rng: &mut StdRng,
        now: DateTime<Utc>,
    ) -> Vec<i64> {
        let n = self.clients.len();
        let k = ((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        let mut ids = Vec::with_capacity(k);
        for i in sample(rng, n, k.min(n)).into_iter() {
            let tz = self.tz;
            let c = &mut self.clients[i];
            if let Some(obj) = c.value.as_object_mut() {
                let old = obj
                    .get("comment")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                obj.insert(
                    "comment".into(),
                    json!(format!("{old} (изменено)").trim().to_string()),
                );
                c.last_change = now;
                obj.insert("last_change_date".into(), json!(fmt_compact(now, tz)));
                ids.push(c.id);
            }
        }
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> GenSpec {
        GenSpec {
            seed,
            company_id: 7,
            clients: 50,
            records: 400,
            first_day: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            last_day: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
            tz: chrono_tz::Europe::Moscow,
        }
    }

    #[test]
    fn same_seed_same_data_other_seed_other_data() {
        let a = CompanyData::generate(&spec(1));
        let b = CompanyData::generate(&spec(1));
        let c = CompanyData::generate(&spec(2));
        let values = |d: &CompanyData| {
            d.records
                .iter()
                .map(|r| r.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        assert_eq!(a.clients.len(), 50);
        assert_eq!(a.records.len(), 400);
    }

    #[test]
    fn records_lie_in_range_and_are_sorted_with_unique_ids() {
        let d = CompanyData::generate(&spec(3));
        let s = spec(3);
        assert!(d
            .records
            .iter()
            .all(|r| r.date >= s.first_day && r.date <= s.last_day));
        assert!(d
            .records
            .windows(2)
            .all(|w| (w[0].datetime, w[0].id) <= (w[1].datetime, w[1].id)));
        let mut ids: Vec<i64> = d.records.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 400);
        assert!(d.clients.windows(2).all(|w| w[0].id < w[1].id));
        // The local date text matches the typed day.
        for r in &d.records {
            let text = r.value["date"].as_str().unwrap();
            assert_eq!(&text[..10], r.date.format("%Y-%m-%d").to_string());
            assert!(r.last_change <= r.datetime + Duration::days(1));
        }
    }

    #[test]
    fn changes_touch_the_requested_share() {
        let mut d = CompanyData::generate(&spec(4));
        let mut rng = StdRng::seed_from_u64(9);
        let before = d.records.clone();
        let now = Utc::now();
        let ids = d.change_records(0.05, &mut rng, now);
        assert_eq!(ids.len(), 20);
        let changed = d
            .records
            .iter()
            .zip(&before)
            .filter(|(a, b)| a.value != b.value)
            .count();
        assert_eq!(changed, 20);
        assert!(d
            .records
            .iter()
            .filter(|r| ids.contains(&r.id))
            .all(|r| r.last_change == now));
    }

    #[test]
    fn catalogue_lists_everything_records_name() {
        let s = spec(5);
        let d = CompanyData::generate(&s);
        let staff: BTreeSet<i64> = d.staff.iter().map(|e| e.id).collect();
        let services: BTreeSet<i64> = d.services.iter().map(|e| e.id).collect();
        let categories: BTreeSet<i64> = d.categories.iter().map(|e| e.id).collect();
        assert_eq!((staff.len(), services.len(), categories.len()), (8, 12, 4));
        assert!(staff.iter().all(|id| id / 100 == 7));
        for r in &d.records {
            assert!(staff.contains(&r.staff_id));
            assert_eq!(r.value["staff_id"], json!(r.staff_id));
            for svc in r.value["services"].as_array().unwrap() {
                assert!(services.contains(&svc["id"].as_i64().unwrap()));
            }
        }
        for e in &d.services {
            assert!(categories.contains(&e.value["category_id"].as_i64().unwrap()));
        }
        let flagged = |f: &str| d.staff.iter().filter(|e| e.value[f] == json!(1)).count();
        assert_eq!((flagged("fired"), flagged("hidden")), (1, 1));
        let fired = d
            .staff
            .iter()
            .find(|e| e.value["fired"] == json!(1))
            .unwrap()
            .id;
        let cutoff = s.first_day + Duration::days((s.last_day - s.first_day).num_days() * 3 / 4);
        let visits: Vec<&RecordRow> = d.records.iter().filter(|r| r.staff_id == fired).collect();
        assert!(!visits.is_empty() && visits.iter().all(|r| r.date <= cutoff));
        assert!(d.next_ids.record > d.records.iter().map(|r| r.id).max().unwrap());
        assert!(d.next_ids.client > d.clients.last().unwrap().id);
        assert_eq!(d.next_ids.staff, 7 * 100 + 9);
    }
}
