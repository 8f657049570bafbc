//! The whole simulated company synced through the engine into Postgres.
//! Needs DATABASE_URL (a server where the test may CREATE DATABASE): run with
//! `scripts/with-postgres.sh cargo test -p sync-source-yclients --test e2e_postgres`.

mod common;

use std::sync::Arc;

use common::*;
use sqlx::{Connection, PgConnection};
use sync_store_postgres::PostgresStore;

/// A fresh database, dropped at the end.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> Self {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
            panic!(
                "DATABASE_URL is not set: this test needs a Postgres server. Run it with \
                 `scripts/with-postgres.sh cargo test -p sync-source-yclients --test e2e_postgres`"
            )
        });
        let name = format!("yclients_e2e_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connecting to DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    async fn drop_db(self) {
        let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_company_into_postgres_then_delta() {
    let db = TestDb::new().await;
    let store = Arc::new(PostgresStore::connect(&db.url).await.unwrap());
    let s = start(sim_config(1000, 20_000), true).await;
    full_sync_matches(&s, &store).await;
    delta_stores_exactly_the_changes(&s, &store).await;
    drop(store);
    db.drop_db().await;
}
