//! Throwaway Postgres databases on the server named by `DATABASE_URL`.

/// The server to benchmark on, if `DATABASE_URL` is set.
pub fn server_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The message printed when Postgres parts are skipped.
pub const SKIPPED: &str = "DATABASE_URL is not set: Postgres skipped \
     (run through scripts/with-postgres.sh to include it)";

/// A database created for one benchmark and dropped by
/// [`FreshDb::drop_db`]: the store crate's throwaway databases.
pub type FreshDb = sync_store_postgres::ScratchDatabase;
