//! Tests of the YClients simulator's catalogue (services, categories,
//! staff) and companies, with a plain HTTP client (no adapter types).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sync_sim::yclients::{
    CompanySize, RunningYclientsSim, SimLimits, YclientsSim, YclientsSimConfig,
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
