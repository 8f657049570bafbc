//! Tests of the YClients simulator's catalogue (services, categories,
//! staff), companies, mutations and webhooks, with a plain HTTP client and a
//! small webhook receiver (no adapter types).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing;
use axum::{Json, Router};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sync_sim::yclients::{
    CompanySize, DeliveryOptions, EventStatus, MutationError, Resource, RunningYclientsSim,
    SimLimits, YclientsSim, YclientsSimConfig,
};

const ACCEPT: &str = "application/vnd.yclients.v2+json";
const COMPANY: u64 = 101;

fn small() -> YclientsSimConfig {
    YclientsSimConfig {
        clients: 120,
        records: 1500,
        days: 120,
        limits: SimLimits::UNLIMITED,
        ..YclientsSimConfig::default()
    }
}

fn auth(sim: &RunningYclientsSim, user: bool) -> String {
    let partner = &sim.config().partner_token;
    if user {
        format!("Bearer {partner}, User {}", sim.current_user_token())
    } else {
        format!("Bearer {partner}")
    }
}

async fn get_as(
    sim: &RunningYclientsSim,
    path: &str,
    query: &[(&str, String)],
    user: bool,
) -> (StatusCode, Value) {
    let resp = Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .query(query)
        .header("Accept", ACCEPT)
        .header("Authorization", auth(sim, user))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(
    sim: &RunningYclientsSim,
    path: &str,
    query: &[(&str, String)],
) -> (StatusCode, Value) {
    get_as(sim, path, query, true).await
}

async fn post(sim: &RunningYclientsSim, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("Accept", ACCEPT)
        .header("Authorization", auth(sim, true))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `data` of a successful list answer, checking the envelope.
async fn list(sim: &RunningYclientsSim, path: &str, query: &[(&str, String)]) -> Vec<Value> {
    let (status, body) = get(sim, path, query).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert_eq!(body["success"], json!(true));
    let data = body["data"].as_array().unwrap().clone();
    assert_eq!(body["meta"]["total_count"], json!(data.len()), "{path}");
    data
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

fn ids(items: &[Value]) -> BTreeSet<i64> {
    items.iter().map(id).collect()
}

fn staff_of(item: &Value) -> BTreeSet<i64> {
    item["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_i64().or_else(|| s["id"].as_i64()).unwrap())
        .collect()
}

#[tokio::test]
async fn catalogue_is_served_both_ways_and_coheres_with_records() {
    let sim = YclientsSim::start(small()).await.unwrap();
    let services = list(&sim, &format!("/services/{COMPANY}"), &[]).await;
    let categories = list(&sim, &format!("/service_categories/{COMPANY}"), &[]).await;
    let staff = list(&sim, &format!("/staff/{COMPANY}"), &[]).await;
    assert_eq!(services, sim.services(COMPANY));
    assert_eq!(categories, sim.service_categories(COMPANY));
    assert_eq!(staff, sim.staff(COMPANY));
    // The newer spelling serves the same.
    assert_eq!(
        list(&sim, &format!("/company/{COMPANY}/services"), &[]).await,
        services
    );
    assert_eq!(
        list(&sim, &format!("/company/{COMPANY}/service_categories"), &[]).await,
        categories
    );
    assert_eq!(
        list(&sim, &format!("/company/{COMPANY}/staff"), &[]).await,
        staff
    );

    // Fields as the reference lists them.
    for s in &services {
        for f in [
            "id",
            "title",
            "category_id",
            "price_min",
            "price_max",
            "duration",
            "active",
            "staff",
            "weight",
            "api_id",
        ] {
            assert!(s.get(f).is_some(), "service field {f}: {s}");
        }
        assert!(s["price_min"].as_i64() <= s["price_max"].as_i64());
        assert!(ids(&categories).contains(&s["category_id"].as_i64().unwrap()));
    }
    for c in &categories {
        for f in ["id", "title", "api_id", "weight", "staff"] {
            assert!(c.get(f).is_some(), "category field {f}: {c}");
        }
    }
    for m in &staff {
        for f in [
            "id",
            "name",
            "specialization",
            "position",
            "avatar",
            "rating",
            "fired",
            "hidden",
            "status",
            "api_id",
        ] {
            assert!(m.get(f).is_some(), "staff field {f}: {m}");
        }
        assert!(m["position"]["id"].is_i64() && m["position"]["title"].is_string());
    }

    // Every record points into the lists, with the names the lists give.
    let records = sim.records(COMPANY);
    let staff_by_id: BTreeMap<i64, &Value> = staff.iter().map(|m| (id(m), m)).collect();
    let service_by_id: BTreeMap<i64, &Value> = services.iter().map(|s| (id(s), s)).collect();
    for r in &records {
        let sid = r["staff_id"].as_i64().unwrap();
        let m = staff_by_id.get(&sid).expect("record staff is listed");
        assert_eq!(r["staff"]["id"], json!(sid));
        assert_eq!(r["staff"]["name"], m["name"]);
        for svc in r["services"].as_array().unwrap() {
            let s = service_by_id
                .get(&id(svc))
                .expect("record service is listed");
            assert_eq!(svc["title"], s["title"]);
            assert!(
                staff_of(s).contains(&sid),
                "the master is listed on the service"
            );
        }
    }
    // Fired and hidden masters are listed, flagged, and old visits name them.
    let fired: Vec<i64> = staff
        .iter()
        .filter(|m| m["fired"] == json!(1))
        .map(id)
        .collect();
    let hidden: Vec<i64> = staff
        .iter()
        .filter(|m| m["hidden"] == json!(1))
        .map(id)
        .collect();
    assert_eq!((fired.len(), hidden.len()), (1, 1));
    let days_of = |who: i64| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["staff_id"] == json!(who))
            .map(|r| r["date"].as_str().unwrap()[..10].to_string())
            .collect()
    };
    assert!(!days_of(fired[0]).is_empty() && !days_of(hidden[0]).is_empty());
    let last_days = (sim.config().end_date - chrono::Duration::days(20)).to_string();
    assert!(
        days_of(fired[0]).iter().all(|d| *d < last_days),
        "a fired master has only old visits"
    );
    assert!(services.iter().any(|s| s["active"] == json!(0)));

    // Filters.
    let master = id(&staff[0]);
    let by_staff = list(
        &sim,
        &format!("/services/{COMPANY}"),
        &[("staff_id", master.to_string())],
    )
    .await;
    let expected: Vec<Value> = services
        .iter()
        .filter(|s| staff_of(s).contains(&master))
        .cloned()
        .collect();
    assert!(!expected.is_empty() && expected.len() < services.len() + 1);
    assert_eq!(by_staff, expected);
    let category = id(&categories[0]);
    let by_category = list(
        &sim,
        &format!("/company/{COMPANY}/services"),
        &[("category_id", category.to_string())],
    )
    .await;
    assert!(!by_category.is_empty());
    assert!(by_category
        .iter()
        .all(|s| s["category_id"] == json!(category)));
    assert_eq!(
        by_category.len(),
        services
            .iter()
            .filter(|s| s["category_id"] == json!(category))
            .count()
    );
    let cats_by_staff = list(
        &sim,
        &format!("/service_categories/{COMPANY}"),
        &[("staff_id", master.to_string())],
    )
    .await;
    assert!(cats_by_staff.iter().all(|c| staff_of(c).contains(&master)));
    assert_eq!(
        cats_by_staff.len(),
        categories
            .iter()
            .filter(|c| staff_of(c).contains(&master))
            .count()
    );
    assert!(list(
        &sim,
        &format!("/services/{COMPANY}"),
        &[("staff_id", "1".into())]
    )
    .await
    .is_empty());

    // One entry, both spellings; unknown ids are 404 in the envelope.
    for (a, b, item) in [
        ("services", "services", &services[3]),
        ("service_categories", "service_categories", &categories[1]),
        ("staff", "staff", &staff[2]),
    ] {
        let (status, body) = get(&sim, &format!("/{a}/{COMPANY}/{}", id(item)), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body["data"], item);
        let (status, body) = get(&sim, &format!("/company/{COMPANY}/{b}/{}", id(item)), &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body["data"], item);
        let (status, body) = get(&sim, &format!("/{a}/{COMPANY}/12345"), &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            (body["success"].clone(), body["data"].clone()),
            (json!(false), Value::Null)
        );
    }

    // Both tokens needed; another company's data is 403.
    let (status, _) = get_as(&sim, &format!("/staff/{COMPANY}"), &[], false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(&sim, "/services/999", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let stats = sim.stats();
    assert_eq!(stats.endpoint("services"), 2 + 4 + 3);
    assert_eq!(stats.endpoint("service_categories"), 2 + 1 + 3);
    assert_eq!(stats.endpoint("staff"), 2 + 3 + 1);
    assert_eq!(stats.company(COMPANY), stats.requests - 1);
    assert_eq!(stats.company(999), 1);
}

#[tokio::test]
async fn companies_list_and_per_company_sizes() {
    let companies: Vec<u64> = (201..=220).collect();
    let sim = YclientsSim::start(YclientsSimConfig {
        companies: companies.clone(),
        clients: 20,
        records: 100,
        company_sizes: BTreeMap::from([(
            205,
            CompanySize {
                clients: 60,
                records: 900,
            },
        )]),
        days: 60,
        limits: SimLimits::UNLIMITED,
        ..YclientsSimConfig::default()
    })
    .await
    .unwrap();
    let mine = list(&sim, "/companies", &[("my", "1".into())]).await;
    assert_eq!(mine.len(), 20);
    assert_eq!(mine, sim.companies());
    let got: Vec<u64> = mine.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(got, companies);
    assert!(mine
        .iter()
        .all(|c| c["title"].as_str().is_some_and(|t| !t.is_empty())));
    let titles: BTreeSet<&str> = mine.iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(titles.len(), 20, "titles tell companies apart");
    // my=1 needs the user token; without my=1 the partner token is enough.
    let (status, _) = get_as(&sim, "/companies", &[("my", "1".into())], false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = get_as(&sim, "/companies", &[], false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 20);

    // Sizes per company.
    let total = |body: &Value| body["meta"]["total_count"].as_u64().unwrap();
    let q = [("with_deleted", "1".to_string())];
    assert_eq!(total(&get(&sim, "/records/205", &q).await.1), 900);
    assert_eq!(total(&get(&sim, "/records/210", &q).await.1), 100);
    assert_eq!(total(&get(&sim, "/clients/205", &[]).await.1), 60);
    assert_eq!(total(&get(&sim, "/clients/219", &[]).await.1), 20);
    // Each company has its own, coherent catalogue.
    assert_eq!(list(&sim, "/staff/219", &[]).await.len(), 8);
    assert!(sim
        .records(219)
        .iter()
        .all(|r| r["staff_id"].as_i64().unwrap() / 100 == 219));

    let stats = sim.stats();
    assert_eq!(stats.endpoint("companies"), 3);
    assert_eq!(stats.company(205), 2);
    assert_eq!(stats.company(219), 2);
    assert_eq!(stats.company(210), 1);

    // Managing only some: the others are listed without my=1 only, and
    // their data is 403.
    let sim = YclientsSim::start(YclientsSimConfig {
        companies: vec![101, 102, 103],
        managed_companies: Some(vec![101, 103]),
        ..small()
    })
    .await
    .unwrap();
    let mine = list(&sim, "/companies", &[("my", "1".into())]).await;
    assert_eq!(mine.iter().map(id).collect::<Vec<_>>(), [101, 103]);
    let (_, all) = get_as(&sim, "/companies", &[], false).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        get(&sim, "/records/102", &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(get(&sim, "/staff/102", &[]).await.0, StatusCode::FORBIDDEN);
    assert_eq!(get(&sim, "/records/103", &[]).await.0, StatusCode::OK);

    // Sizes for a company not served are a configuration error.
    let bad = YclientsSim::start(YclientsSimConfig {
        company_sizes: BTreeMap::from([(
            999,
            CompanySize {
                clients: 1,
                records: 1,
            },
        )]),
        ..small()
    })
    .await;
    assert!(bad.is_err());
}

async fn all_client_ids(sim: &RunningYclientsSim) -> (u64, BTreeSet<i64>) {
    let (status, body) = post(
        sim,
        &format!("/company/{COMPANY}/clients/search"),
        json!({"page": 1, "page_size": 200, "fields": ["id", "name"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    (
        body["meta"]["total_count"].as_u64().unwrap(),
        ids(body["data"].as_array().unwrap()),
    )
}

fn local_now_minus(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[tokio::test]
async fn mutations_show_where_they_should() {
    let sim = YclientsSim::start(small()).await.unwrap();
    let clients = sim.clients(COMPANY);
    let gone = id(&clients[5]);

    // A deleted client disappears from every client list.
    let removed = sim.remove(COMPANY, Resource::Client, gone).unwrap();
    assert_eq!(removed, clients[5]);
    let (total, seen) = all_client_ids(&sim).await;
    assert_eq!(total, 119);
    assert!(!seen.contains(&gone));
    let (_, body) = get(
        &sim,
        &format!("/clients/{COMPANY}"),
        &[("count", "200".into())],
    )
    .await;
    assert_eq!(body["meta"]["total_count"], json!(119));
    assert!(!ids(body["data"].as_array().unwrap()).contains(&gone));
    assert_eq!(
        get(&sim, &format!("/client/{COMPANY}/{gone}"), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = post(
        &sim,
        &format!("/company/{COMPANY}/clients/visits/search"),
        json!({"client_id": gone}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!ids(&sim.clients(COMPANY)).contains(&gone));
    assert!(matches!(
        sim.remove(COMPANY, Resource::Client, gone),
        Err(MutationError::NotFound { .. })
    ));

    // A new client is everywhere, and a changed_after delta finds it alone.
    let since = local_now_minus(1);
    let new = sim
        .add(
            COMPANY,
            Resource::Client,
            json!({"name": "Вера", "surname": "Новая", "id": 1}),
        )
        .unwrap();
    let new_id = id(&new);
    assert!(
        new_id > id(clients.last().unwrap()),
        "a fresh id, not the one asked"
    );
    assert_eq!(new["name"], json!("Вера"));
    let (total, seen) = all_client_ids(&sim).await;
    assert_eq!(total, 120);
    assert!(seen.contains(&new_id));
    let (status, body) = get(&sim, &format!("/client/{COMPANY}/{new_id}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], new);
    let (_, delta) = get(
        &sim,
        &format!("/clients/{COMPANY}"),
        &[("changed_after", since.clone())],
    )
    .await;
    assert_eq!(
        ids(delta["data"].as_array().unwrap()),
        BTreeSet::from([new_id])
    );
    let edited = sim
        .update(
            COMPANY,
            Resource::Client,
            id(&clients[0]),
            json!({"comment": "новый комментарий"}),
        )
        .unwrap();
    assert_eq!(edited["comment"], json!("новый комментарий"));
    assert_eq!(
        edited["surname"], clients[0]["surname"],
        "other fields stay"
    );
    let (_, delta) = get(
        &sim,
        &format!("/clients/{COMPANY}"),
        &[("changed_after", since.clone())],
    )
    .await;
    assert_eq!(
        ids(delta["data"].as_array().unwrap()),
        BTreeSet::from([id(&clients[0]), new_id])
    );

    // A new record for the new client, with names filled from the lists.
    let staff = sim.staff(COMPANY);
    let services = sim.services(COMPANY);
    let record = sim
        .add(
            COMPANY,
            Resource::Record,
            json!({"client_id": new_id, "staff_id": id(&staff[1]),
                   "services": [{"id": id(&services[0])}, {"id": id(&services[2]), "cost": 10}],
                   "date": "2025-06-20 15:30:00", "comment": "с сайта"}),
        )
        .unwrap();
    assert_eq!(record["client"]["id"], json!(new_id));
    assert_eq!(record["client"]["name"], json!("Вера Новая"));
    assert_eq!(record["staff"]["name"], staff[1]["name"]);
    assert_eq!(record["services"][0]["title"], services[0]["title"]);
    assert_eq!(record["services"][1]["cost"], json!(10));
    assert_eq!(record["datetime"], json!("2025-06-20T15:30:00+03:00"));
    assert_eq!(record["deleted"], json!(false));
    let rid = id(&record);
    let (_, delta) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[
            ("changed_after", since.clone()),
            ("with_deleted", "1".into()),
        ],
    )
    .await;
    assert_eq!(delta["data"], json!([record.clone()]));
    let (_, by_day) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[
            ("start_date", "2025-06-20".into()),
            ("end_date", "2025-06-20".into()),
            ("count", "200".into()),
        ],
    )
    .await;
    assert!(ids(by_day["data"].as_array().unwrap()).contains(&rid));
    let (_, history) = post(
        &sim,
        &format!("/company/{COMPANY}/clients/visits/search"),
        json!({"client_id": new_id}),
    )
    .await;
    assert_eq!(history["data"]["records"], json!([record.clone()]));
    // Defaults: the first master not fired, the end day at noon.
    let plain = sim.add(COMPANY, Resource::Record, json!({})).unwrap();
    assert_eq!(plain["date"], json!("2025-06-30 12:00:00"));
    assert!(plain["client"].is_null());
    let master = staff.iter().find(|m| json!(id(m)) == plain["staff_id"]);
    assert_eq!(master.unwrap()["fired"], json!(0));
    // References must exist.
    for bad in [
        json!({"staff_id": 1}),
        json!({"services": [{"id": 1}]}),
        json!({"client_id": gone}),
        json!({"date": "30.06.2025"}),
        json!([1, 2]),
    ] {
        assert!(
            matches!(
                sim.add(COMPANY, Resource::Record, bad.clone()),
                Err(MutationError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        sim.add(999, Resource::Record, json!({})),
        Err(MutationError::UnknownCompany(999))
    );
    // Removing a record marks it deleted: gone by default, there with_deleted.
    let deleted = sim.remove(COMPANY, Resource::Record, rid).unwrap();
    assert_eq!(deleted["deleted"], json!(true));
    let (_, live) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[("changed_after", since.clone())],
    )
    .await;
    assert!(!ids(live["data"].as_array().unwrap()).contains(&rid));
    let (_, all) = get(
        &sim,
        &format!("/records/{COMPANY}"),
        &[
            ("changed_after", since.clone()),
            ("with_deleted", "1".into()),
        ],
    )
    .await;
    assert!(all["data"].as_array().unwrap().contains(&deleted));

    // Catalogue: add, edit, remove; removals show by absence.
    let service = sim
        .add(
            COMPANY,
            Resource::Service,
            json!({"title": "Ламинирование", "staff": [id(&staff[0])], "duration": 2700}),
        )
        .unwrap();
    let sv = id(&service);
    assert_eq!(
        service["staff"],
        json!([{"id": id(&staff[0]), "seance_length": 2700}])
    );
    assert!(ids(&list(&sim, &format!("/company/{COMPANY}/services"), &[]).await).contains(&sv));
    sim.update(
        COMPANY,
        Resource::Service,
        sv,
        json!({"title": "Ламинирование бровей", "price_max": 3000}),
    )
    .unwrap();
    let (_, one) = get(&sim, &format!("/services/{COMPANY}/{sv}"), &[]).await;
    assert_eq!(one["data"]["title"], json!("Ламинирование бровей"));
    assert!(sim
        .update(COMPANY, Resource::Service, sv, json!({"category_id": 5}))
        .is_err());
    sim.remove(COMPANY, Resource::Service, sv).unwrap();
    assert!(!ids(&list(&sim, &format!("/services/{COMPANY}"), &[]).await).contains(&sv));
    assert_eq!(
        get(&sim, &format!("/services/{COMPANY}/{sv}"), &[]).await.0,
        StatusCode::NOT_FOUND
    );

    let category = sim
        .add(
            COMPANY,
            Resource::ServiceCategory,
            json!({"title": "Спа", "staff": [id(&staff[3])]}),
        )
        .unwrap();
    let cat = id(&category);
    assert_eq!(category["staff"], json!([id(&staff[3])]));
    let in_cat = sim
        .add(
            COMPANY,
            Resource::Service,
            json!({"title": "Обёртывание", "category_id": cat}),
        )
        .unwrap();
    let (_, by_cat) = get(
        &sim,
        &format!("/services/{COMPANY}"),
        &[("category_id", cat.to_string())],
    )
    .await;
    assert_eq!(by_cat["data"], json!([in_cat]));
    sim.update(
        COMPANY,
        Resource::ServiceCategory,
        cat,
        json!({"title": "SPA"}),
    )
    .unwrap();
    let (_, one) = get(
        &sim,
        &format!("/company/{COMPANY}/service_categories/{cat}"),
        &[],
    )
    .await;
    assert_eq!(one["data"]["title"], json!("SPA"));
    sim.remove(COMPANY, Resource::ServiceCategory, cat).unwrap();
    assert!(!ids(&list(&sim, &format!("/service_categories/{COMPANY}"), &[]).await).contains(&cat));

    let newbie = sim
        .add(COMPANY, Resource::Staff, json!({"name": "Юлия Лэшмейкер"}))
        .unwrap();
    let nb = id(&newbie);
    assert_eq!(
        (newbie["fired"].clone(), newbie["hidden"].clone()),
        (json!(0), json!(0))
    );
    assert!(ids(&list(&sim, &format!("/staff/{COMPANY}"), &[]).await).contains(&nb));
    sim.update(COMPANY, Resource::Staff, nb, json!({"fired": 1}))
        .unwrap();
    let (_, one) = get(&sim, &format!("/staff/{COMPANY}/{nb}"), &[]).await;
    assert_eq!(one["data"]["fired"], json!(1));
    // Removing a master who works: they leave the lists, old visits keep
    // naming them.
    let leaver = id(&staff[0]);
    sim.remove(COMPANY, Resource::Staff, leaver).unwrap();
    assert!(!ids(&list(&sim, &format!("/company/{COMPANY}/staff"), &[]).await).contains(&leaver));
    assert!(list(
        &sim,
        &format!("/services/{COMPANY}"),
        &[("staff_id", leaver.to_string())]
    )
    .await
    .is_empty());
    assert!(list(
        &sim,
        &format!("/service_categories/{COMPANY}"),
        &[("staff_id", leaver.to_string())]
    )
    .await
    .is_empty());
    assert!(sim
        .records(COMPANY)
        .iter()
        .any(|r| r["staff_id"] == json!(leaver)));
    assert!(sim
        .add(COMPANY, Resource::Record, json!({"staff_id": leaver}))
        .is_err());
    // Removed ids are not handed out again.
    let again = sim.add(COMPANY, Resource::Service, json!({})).unwrap();
    assert!(id(&again) > sv);

    // The bulk changes still work, and deltas see them.
    let changed = sim.change_random(COMPANY, 0.01, 0.05, 3);
    assert_eq!((changed.records.len(), changed.clients.len()), (15, 6));
    let touched = sim.touch_random(COMPANY, 0.01, 4);
    assert_eq!(touched.len(), 15);
}

// ---------------------------------------------------------------- webhooks

/// One delivery: the secret header, the query string, the body.
type Delivery = (Option<String>, Option<String>, Value);

#[derive(Clone, Default)]
struct Received {
    events: Arc<Mutex<Vec<Delivery>>>,
}

impl Received {
    fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

/// A webhook receiver: keeps (secret header, query, body); answers 410 to
/// staff events and 200 to the others.
async fn receiver() -> (SocketAddr, Received) {
    async fn hook(
        State(r): State<Received>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> AxStatus {
        let secret = headers
            .get("x-sim-secret")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let staff = body["resource"] == json!("staff");
        r.events.lock().unwrap().push((secret, query, body));
        if staff {
            AxStatus::GONE
        } else {
            AxStatus::OK
        }
    }
    let received = Received::default();
    let app = Router::new()
        .route("/hook", routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

#[tokio::test]
async fn mutations_post_webhooks_and_floods_are_delivered() {
    let (addr, received) = receiver().await;
    let sim = YclientsSim::start(YclientsSimConfig {
        webhook_url: Some(format!("http://{addr}/hook?from=sim")),
        webhook_header: Some(("X-Sim-Secret".into(), "s3cret".into())),
        webhook_query: Some(("token".into(), "q-secret".into())),
        ..small()
    })
    .await
    .unwrap();
    let staff = sim.staff(COMPANY);
    let client = sim
        .add(COMPANY, Resource::Client, json!({"name": "Ия"}))
        .unwrap();
    let cid = id(&client);
    let client2 = sim
        .update(COMPANY, Resource::Client, cid, json!({"comment": "VIP"}))
        .unwrap();
    let record = sim
        .add(
            COMPANY,
            Resource::Record,
            json!({"client_id": cid, "staff_id": id(&staff[2])}),
        )
        .unwrap();
    let record2 = sim.remove(COMPANY, Resource::Record, id(&record)).unwrap();
    let client3 = sim.remove(COMPANY, Resource::Client, cid).unwrap();
    let service = sim
        .add(COMPANY, Resource::Service, json!({"title": "Пилинг"}))
        .unwrap();
    let category = sim
        .update(
            COMPANY,
            Resource::ServiceCategory,
            id(&sim.service_categories(COMPANY)[0]),
            json!({"weight": 99}),
        )
        .unwrap();
    let member = sim.remove(COMPANY, Resource::Staff, id(&staff[7])).unwrap();
    assert!(
        sim.add(COMPANY, Resource::Staff, json!({"position": 5}))
            .is_err(),
        "refused: no event"
    );
    assert!(sim.wait_for_webhooks(Duration::from_secs(10)).await);

    let got = received.take();
    let expected = [
        ("client", cid, "create", client),
        ("client", cid, "update", client2),
        ("record", id(&record), "create", record.clone()),
        ("record", id(&record), "delete", record2),
        ("client", cid, "delete", client3),
        ("service", id(&service), "create", service.clone()),
        (
            "service_category",
            id(&category),
            "update",
            category.clone(),
        ),
        ("staff", id(&member), "delete", member.clone()),
    ];
    assert_eq!(got.len(), expected.len());
    for ((secret, query, body), (resource, rid, status, data)) in got.iter().zip(&expected) {
        assert_eq!(secret.as_deref(), Some("s3cret"));
        assert_eq!(query.as_deref(), Some("from=sim&token=q-secret"));
        assert_eq!(
            body,
            &json!({"company_id": COMPANY, "resource": resource, "resource_id": rid,
                    "status": status, "data": data}),
            "in the order they happened"
        );
    }
    let stats = sim.webhook_stats();
    assert_eq!((stats.queued, stats.pending, stats.failed), (8, 0, 0));
    assert_eq!((stats.status(200), stats.status(410)), (7, 1));
    assert_eq!(stats.answered(), 8);

    // The bulk changes send events too: `delete` for records they delete.
    let changed = sim.change_random(COMPANY, 0.02, 0.05, 9);
    let touched = sim.touch_random(COMPANY, 0.01, 10);
    assert!(sim.wait_for_webhooks(Duration::from_secs(10)).await);
    let got = received.take();
    assert_eq!(
        got.len(),
        changed.records.len() + changed.clients.len() + touched.len()
    );
    let records_now: BTreeMap<i64, Value> = sim
        .records(COMPANY)
        .into_iter()
        .map(|r| (id(&r), r))
        .collect();
    for (_, _, body) in &got[..changed.records.len()] {
        let rid = body["resource_id"].as_i64().unwrap();
        assert!(changed.records.contains(&rid));
        let deleted_now = records_now[&rid]["deleted"] == json!(true);
        if body["status"] == json!("delete") {
            assert!(deleted_now);
        }
    }
    assert!(got.iter().any(|(_, _, b)| b["status"] == json!("delete")));
    let client_events: BTreeSet<i64> = got
        .iter()
        .filter(|(_, _, b)| b["resource"] == json!("client"))
        .map(|(_, _, b)| b["resource_id"].as_i64().unwrap())
        .collect();
    assert_eq!(client_events, changed.clients.iter().copied().collect());

    // A flood: 1,000 events for 50 clients, shuffled, some twice.
    sim.reset_webhook_stats();
    let flood = sim.flood_events(COMPANY, Resource::Client, 50, 1000);
    assert_eq!(flood.len(), 1000);
    let queued = sim.deliver_events(
        flood.clone(),
        DeliveryOptions {
            shuffle: true,
            duplicate_rate: 0.1,
            seed: 5,
        },
    );
    assert!(queued > 1050 && queued < 1150, "about 10% twice: {queued}");
    assert!(sim.wait_for_webhooks(Duration::from_secs(60)).await);
    let got = received.take();
    assert_eq!(got.len(), queued);
    let mut per_client: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, _, b) in &got {
        assert_eq!(b["status"], json!("update"));
        *per_client
            .entry(b["resource_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_client.len(), 50);
    assert!(per_client.values().all(|&n| n >= 20));
    let order: Vec<i64> = got
        .iter()
        .map(|(_, _, b)| b["resource_id"].as_i64().unwrap())
        .collect();
    let round_robin: Vec<i64> = flood.iter().map(|e| e.resource_id).collect();
    assert_ne!(order[..100], round_robin[..100], "shuffled");
    let stats = sim.webhook_stats();
    assert_eq!(
        (stats.queued, stats.status(200)),
        (queued as u64, queued as u64)
    );
    // In order and once each without options.
    let one = vec![sim
        .event_for(
            COMPANY,
            Resource::Service,
            id(&service),
            EventStatus::Update,
        )
        .unwrap()];
    assert_eq!(sim.deliver_events(one, DeliveryOptions::default()), 1);
    assert!(sim.wait_for_webhooks(Duration::from_secs(10)).await);
    assert_eq!(received.take()[0].2["data"], service);

    // Nowhere to send: counted as failed, no retry. Off: nothing sent.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    sim.set_webhook_url(Some(&format!("http://{closed}/hook")))
        .unwrap();
    sim.reset_webhook_stats();
    sim.update(
        COMPANY,
        Resource::Staff,
        id(&staff[0]),
        json!({"hidden": 1}),
    )
    .unwrap();
    assert!(sim.wait_for_webhooks(Duration::from_secs(15)).await);
    assert_eq!(
        (sim.webhook_stats().failed, sim.webhook_stats().queued),
        (1, 1)
    );
    sim.set_webhook_url(None).unwrap();
    sim.update(
        COMPANY,
        Resource::Staff,
        id(&staff[0]),
        json!({"hidden": 0}),
    )
    .unwrap();
    assert_eq!(sim.deliver_events(flood, DeliveryOptions::default()), 0);
    assert_eq!(sim.webhook_stats().queued, 1);
    assert!(sim.set_webhook_url(Some("ftp://example.test/")).is_err());
    assert!(received.take().is_empty());
}
