//! A seeded simulated year imported through the engine into Postgres.
//!
//! Needs DATABASE_URL (a server where it may CREATE DATABASE); run with
//! `scripts/with-postgres.sh cargo test -p sync-source-scraper --test e2e_postgres`.
//! The test works in a fresh database of its own, dropped at the end.

mod e2e;

use std::sync::Arc;

use sqlx::{Connection, PgConnection};
use sync_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_year_into_postgres_equals_the_simulator() {
    let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: this test needs a Postgres server. Run it with \
             `scripts/with-postgres.sh cargo test -p sync-source-scraper`"
        )
    });
    let name = format!("scraper_e2e_{:016x}", rand::random::<u64>());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connecting to DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));

    let store = PostgresStore::connect(url.as_str()).await.unwrap();
    e2e::import_a_year(Arc::new(store.clone())).await;
    store.pool().close().await;

    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
