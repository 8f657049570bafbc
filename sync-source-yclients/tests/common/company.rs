//! A whole company through every stream, as `sync-cli run --source
//! yclients-all` runs it ([`CompanySources::runs`]), compared with the
//! simulator: the catalogue, the clients and the records exactly, and the
//! stores' owner views against values computed from the simulator's data.
//!
//! [`CompanySources::runs`]: sync_source_yclients::CompanySources::runs

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::{json, Value};
use sync_core::{CheckpointStore, ExistingQuery, RunReport, Store, SyncMode, Target};
use sync_sim::yclients::Resource;
use sync_source_yclients::{
    CatalogueKind, ClientsDeltaUsed, YclientsCatalogue, YclientsClients, YclientsConfig,
};

use super::*;

/// Entities removed at the source during a test, as last served.
#[derive(Clone, Debug, Default)]
pub(crate) struct Removed(pub(crate) BTreeMap<Resource, Vec<Value>>);

impl Removed {
    fn of(&self, resource: Resource) -> &[Value] {
        self.0.get(&resource).map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, resource: Resource, value: Value) {
        self.0.entry(resource).or_default().push(value);
    }
}

/// A row of `yclients_client_visits`: client id, visit count, spend, first
/// and last visit, bookings.
pub(crate) type ClientRow = (i64, i64, f64, Option<String>, Option<String>, i64);
/// A row of `yclients_visit_details`: record id, client id, client name,
/// staff name, service titles, attendance, deleted.
pub(crate) type VisitRow = (
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    bool,
);

/// The configuration of the company tests: a full scan of the clients
/// every second delta run, none by age.
pub(crate) fn scan_every_second_delta(c: &mut YclientsConfig) {
    c.clients_full_scan.every_days = None;
    c.clients_full_scan.every_runs = Some(2);
}

/// Runs every stream of the company in order with `mode`; returns the
/// reports, and checks each ran clean.
pub(crate) async fn sync_company<S: Store + CheckpointStore + 'static>(
    s: &Setup,
    store: &Arc<S>,
    mode: SyncMode,
) -> Vec<RunReport> {
    let records = Target::Days {
        range: whole_range(s),
        tz: s.sim.config().tz,
    };
    let runs = s
        .sources
        .runs(store.as_ref(), records, mode, false)
        .await
        .unwrap();
    let mut reports = Vec::new();
    for run in runs {
        let options = SyncOptions::builder()
            .mode(run.mode)
            .force(run.force)
            .max_in_flight(std::num::NonZeroUsize::new(2).unwrap())
            .retry(fast_retry())
            .build();
        let report = engine(s, run.source.clone(), store)
            .run(&run.target, &options)
            .await
            .unwrap();
        assert_clean(&report);
        reports.push(report);
    }
    reports
}

/// `stream name: requests` for each report, and the total.
pub(crate) fn requests_of(reports: &[RunReport]) -> (String, u64) {
    let parts: Vec<String> = reports
        .iter()
        .map(|r| format!("{} {}", r.stream.stream, r.requests))
        .collect();
    (parts.join(", "), reports.iter().map(|r| r.requests).sum())
}

fn by_stream<'a>(reports: &'a [RunReport], stream: &str) -> &'a RunReport {
    reports
        .iter()
        .find(|r| r.stream.stream == stream)
        .unwrap_or_else(|| panic!("no run of {stream}"))
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

/// The stored records of `entity` in `stream` with these ids, by id.
async fn stored<S: Store>(
    store: &S,
    stream: &sync_core::StreamId,
    entity: &str,
    ids: impl IntoIterator<Item = i64>,
) -> BTreeMap<i64, sync_core::StoredRecord> {
    let ids: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    store
        .existing(
            stream,
            &ExistingQuery::ByIds {
                entity: entity.into(),
                ids,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.external_id.parse().unwrap(), r))
        .collect()
}

/// One entity kind stored exactly: every entity the simulator serves, as
/// served and not deleted; every removed one, as last served and deleted.
async fn assert_kind<S: Store>(
    store: &S,
    stream: &sync_core::StreamId,
    entity: &str,
    served: Vec<Value>,
    removed: &[Value],
) {
    let ids = served.iter().chain(removed).map(id);
    let got = stored(store, stream, entity, ids).await;
    assert_eq!(got.len(), served.len() + removed.len(), "{entity} count");
    for v in &served {
        let r = &got[&id(v)];
        assert_eq!(&r.payload, v, "{entity} {}", id(v));
        assert!(!r.deleted, "{entity} {} is live", id(v));
    }
    for v in removed {
        let r = &got[&id(v)];
        assert_eq!(&r.payload, v, "removed {entity} {}", id(v));
        assert!(r.deleted, "removed {entity} {} is marked deleted", id(v));
    }
}

fn resource_of(kind: CatalogueKind) -> Resource {
    match kind {
        CatalogueKind::ServiceCategories => Resource::ServiceCategory,
        CatalogueKind::Services => Resource::Service,
        CatalogueKind::Staff => Resource::Staff,
    }
}

/// The store holds the company exactly as the simulator serves it:
/// records and clients ([`assert_store_equals_sim`]), removed clients and
/// the catalogue, removed entities marked deleted.
pub(crate) async fn assert_company_equals_sim<S: Store>(s: &Setup, store: &S, removed: &Removed) {
    assert_store_equals_sim(s, store).await;
    assert_kind(
        store,
        &YclientsClients::stream_id(COMPANY),
        "client",
        s.sim.clients(COMPANY),
        removed.of(Resource::Client),
    )
    .await;
    for kind in CatalogueKind::ALL {
        let resource = resource_of(kind);
        assert_kind(
            store,
            &YclientsCatalogue::stream_id(COMPANY, kind),
            kind.entity(),
            s.sim.list(COMPANY, resource),
            removed.of(resource),
        )
        .await;
    }
}

/// What the owner views should show, from the simulator's data (removed
/// entities as last served, since the store keeps them flagged).
fn expected_views(
    s: &Setup,
    removed: &Removed,
) -> (BTreeMap<i64, ClientRow>, BTreeMap<i64, VisitRow>) {
    let with_removed = |resource: Resource| -> BTreeMap<i64, Value> {
        s.sim
            .list(COMPANY, resource)
            .into_iter()
            .chain(removed.of(resource).iter().cloned())
            .map(|v| (id(&v), v))
            .collect()
    };
    let clients = with_removed(Resource::Client);
    let staff = with_removed(Resource::Staff);
    let services = with_removed(Resource::Service);
    let records = s.sim.records(COMPANY);

    let text = |v: &Value| v.as_str().map(str::to_string);
    let mut visits = BTreeMap::new();
    let mut per_client: BTreeMap<i64, ClientRow> = clients
        .keys()
        .map(|&c| (c, (c, 0, 0.0, None, None, 0)))
        .collect();
    for r in &records {
        let client_id = r["client"]["id"].as_i64();
        let client_name = match client_id.and_then(|c| clients.get(&c)) {
            Some(c) => Some(
                format!(
                    "{} {}",
                    c["name"].as_str().unwrap_or(""),
                    c["surname"].as_str().unwrap_or("")
                )
                .trim()
                .to_string(),
            ),
            None => text(&r["client"]["name"]),
        };
        let staff_name = r["staff_id"]
            .as_i64()
            .and_then(|st| staff.get(&st))
            .map(|st| st["name"].clone())
            .unwrap_or_else(|| r["staff"]["name"].clone());
        let lines = r["services"].as_array().cloned().unwrap_or_default();
        let titles: Vec<String> = lines
            .iter()
            .filter_map(|l| {
                l["id"]
                    .as_i64()
                    .and_then(|i| services.get(&i))
                    .and_then(|svc| text(&svc["title"]))
                    .or_else(|| text(&l["title"]))
            })
            .collect();
        let cost: f64 = lines.iter().filter_map(|l| l["cost"].as_f64()).sum();
        let attendance = r["attendance"].as_i64();
        let deleted = r["deleted"] == json!(true);
        visits.insert(
            id(r),
            (
                Some(id(r)),
                client_id,
                client_name,
                text(&staff_name),
                (!titles.is_empty()).then(|| titles.join(", ")),
                attendance,
                deleted,
            ),
        );
        let Some(row) = client_id.and_then(|c| per_client.get_mut(&c)) else {
            continue;
        };
        if deleted {
            continue;
        }
        row.5 += 1;
        if attendance == Some(1) {
            let day = r["date"].as_str().unwrap()[..10].to_string();
            row.1 += 1;
            row.2 += cost;
            if row.3.as_ref().is_none_or(|f| &day < f) {
                row.3 = Some(day.clone());
            }
            if row.4.as_ref().is_none_or(|l| &day > l) {
                row.4 = Some(day);
            }
        }
    }
    (per_client, visits)
}

/// The views as queried equal what the simulator's data says.
pub(crate) fn assert_views(
    s: &Setup,
    removed: &Removed,
    (clients, visits): (Vec<ClientRow>, Vec<VisitRow>),
) {
    let (want_clients, want_visits) = expected_views(s, removed);
    assert_eq!(clients.len(), want_clients.len(), "client rows");
    let mut with_visits = 0;
    for got in &clients {
        let want = &want_clients[&got.0];
        assert_eq!(
            (got.1, &got.3, &got.4, got.5),
            (want.1, &want.3, &want.4, want.5),
            "client {}",
            got.0
        );
        assert!((got.2 - want.2).abs() < 0.005, "spend of {}", got.0);
        with_visits += usize::from(got.1 > 0);
    }
    assert!(with_visits > want_clients.len() / 2, "most clients came");
    assert_eq!(visits.len(), want_visits.len(), "visit rows");
    for got in &visits {
        let want = &want_visits[&got.0.unwrap()];
        assert_eq!(got, want, "record {:?}", got.0);
    }
}

/// The whole company: a full sync, a delta after 1% of clients and records
/// changed (a handful of requests), catalogue removals, deleted clients
/// found by the scheduled full scan, and a delta when the deprecated
/// clients list is gone. The store is exact after each, and so are the
/// owner views (`views` queries them). Prints the request counts.
pub(crate) async fn whole_company_then_deltas<S, F, Fut>(s: &Setup, store: &Arc<S>, views: F)
where
    S: Store + CheckpointStore + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = (Vec<ClientRow>, Vec<VisitRow>)>,
{
    let mut removed = Removed::default();

    // 1. The whole company.
    let full = sync_company(s, store, SyncMode::Full).await;
    let (per_stream, full_requests) = requests_of(&full);
    assert_eq!(
        full_requests,
        s.sim.stats().requests,
        "every request counted"
    );
    let mut catalogue_requests = 0;
    for kind in CatalogueKind::ALL {
        let report = by_stream(&full, kind.stream_name());
        assert_eq!(
            report.counts.created as usize,
            s.sim.list(COMPANY, resource_of(kind)).len()
        );
        catalogue_requests += report.requests;
    }
    // The listing and the list of each, and the login (with a password)
    // before the first.
    assert_eq!(catalogue_requests, 6 + s.sim.stats().logins);
    assert_company_equals_sim(s, store.as_ref(), &removed).await;
    assert_views(s, &removed, views().await);
    assert_no_breach(s);
    eprintln!("yclients company, full sync: {full_requests} requests ({per_stream})");

    // 2. 1% of clients and records change, one service is renamed, a staff
    // member joins.
    let changed = s.sim.change_random(COMPANY, 0.01, 0.01, 99);
    assert!(!changed.records.is_empty() && !changed.clients.is_empty());
    let service = id(&s.sim.services(COMPANY)[0]);
    s.sim
        .update(
            COMPANY,
            Resource::Service,
            service,
            json!({"title": "Стрижка новая"}),
        )
        .unwrap();
    s.sim
        .add(COMPANY, Resource::Staff, json!({"name": "Новый мастер"}))
        .unwrap();
    s.sim.reset_stats();
    let delta = sync_company(s, store, SyncMode::Delta).await;
    let (per_stream, delta_requests) = requests_of(&delta);
    assert_eq!(delta_requests, s.sim.stats().requests);
    let records = by_stream(&delta, "records");
    assert_eq!(records.mode, SyncMode::Delta);
    let c = records.counts;
    assert_eq!(c.created, 0, "{c:?}");
    assert_eq!(
        (c.updated + c.deleted) as usize,
        changed.records.len(),
        "{c:?}"
    );
    let clients = by_stream(&delta, "clients");
    assert_eq!(clients.mode, SyncMode::Delta);
    assert_eq!(
        clients.counts.updated as usize,
        changed.clients.len(),
        "{:?}",
        clients.counts
    );
    assert_eq!(
        s.sources.clients.delta_used(),
        Some(ClientsDeltaUsed::ChangedAfter)
    );
    assert_eq!(by_stream(&delta, "services").counts.updated, 1);
    assert_eq!(by_stream(&delta, "staff").counts.created, 1);
    // Each catalogue list twice (listing, list), the changed clients in one
    // page, the changed records in one or two and the recent days in one.
    assert!(
        delta_requests <= 12,
        "{delta_requests} requests: {per_stream}"
    );
    assert!(delta_requests * 5 < full_requests);
    assert_company_equals_sim(s, store.as_ref(), &removed).await;
    assert_views(s, &removed, views().await);
    eprintln!(
        "yclients company, delta after 1% of {} clients and {} records changed: {delta_requests} requests ({per_stream}); the full sync took {full_requests}",
        s.sim.config().clients,
        s.sim.config().records,
    );

    // 3. A client, a service, a category and a staff member go. The lists
    // show the catalogue's removals at once; the clients delta cannot see
    // a deleted client.
    let client = id(&s.sim.clients(COMPANY)[3]);
    removed.add(
        Resource::Client,
        s.sim.remove(COMPANY, Resource::Client, client).unwrap(),
    );
    for resource in [
        Resource::Service,
        Resource::ServiceCategory,
        Resource::Staff,
    ] {
        let last = s.sim.list(COMPANY, resource).last().cloned().unwrap();
        removed.add(
            resource,
            s.sim.remove(COMPANY, resource, id(&last)).unwrap(),
        );
    }
    let delta = sync_company(s, store, SyncMode::Delta).await;
    assert_eq!(by_stream(&delta, "clients").mode, SyncMode::Delta);
    for stream in ["services", "service_categories", "staff"] {
        assert_eq!(by_stream(&delta, stream).counts.deleted, 1, "{stream}");
    }
    let still = stored(
        store.as_ref(),
        &YclientsClients::stream_id(COMPANY),
        "client",
        [client],
    )
    .await;
    assert!(
        !still[&client].deleted,
        "a delta does not see deleted clients"
    );

    // 4. The second delta since the full run: a full scan of the clients,
    // which finds the deleted client.
    s.sim.reset_stats();
    let scan = sync_company(s, store, SyncMode::Delta).await;
    let clients = by_stream(&scan, "clients");
    assert_eq!((clients.mode, clients.counts.deleted), (SyncMode::Full, 1));
    assert_eq!(
        clients.counts.unchanged as usize,
        s.sim.clients(COMPANY).len()
    );
    assert_company_equals_sim(s, store.as_ref(), &removed).await;
    assert_views(s, &removed, views().await);
    let (per_stream, scan_requests) = requests_of(&scan);
    eprintln!(
        "yclients company, delta with the clients full scan due: {scan_requests} requests ({per_stream})"
    );

    // 5. The deprecated list is gone: the clients delta scans every page.
    s.sim.set_clients_list_gone(true);
    let changed = s.sim.change_random(COMPANY, 0.0, 0.01, 7);
    s.sim.reset_stats();
    let gone = sync_company(s, store, SyncMode::Delta).await;
    let clients = by_stream(&gone, "clients");
    assert_eq!(clients.mode, SyncMode::Delta);
    assert_eq!(clients.counts.updated as usize, changed.clients.len());
    assert_eq!(
        s.sources.clients.delta_used(),
        Some(ClientsDeltaUsed::ScanListGone)
    );
    assert_eq!(s.sim.stats().endpoint("clients_list"), 1, "asked once");
    assert_company_equals_sim(s, store.as_ref(), &removed).await;
    let (per_stream, gone_requests) = requests_of(&gone);
    eprintln!(
        "yclients company, delta with the deprecated clients list gone: {gone_requests} requests ({per_stream})"
    );
    assert_no_breach(s);
}
