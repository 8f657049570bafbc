//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Copies the history of a booking system (a YClients salon, a kennel's
/// booking web app) into your own database, and keeps it current.
///
/// Every finished batch is checkpointed with its data, so a killed run
/// resumes where it stopped; re-running never duplicates rows; the external
/// system's rate limits are held. Settings come from a TOML file
/// (--config), then environment variables, then flags (later wins).
/// Passwords and tokens are read only from the environment or from files.
#[derive(Debug, Parser)]
#[command(name = "sync-cli", version, propagate_version = true)]
pub(crate) struct Cli {
    /// TOML configuration file (default: sync.toml if it exists).
    #[arg(long, global = true, env = "SYNC_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Postgres URL of the production store (postgres://...). Without it the
    /// embedded SQLite store is used.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) database_url: Option<String>,

    /// SQLite database file of the embedded store (default: data/sync.db).
    #[arg(long, global = true, env = "SYNC_SQLITE_PATH", value_name = "FILE")]
    pub(crate) sqlite: Option<PathBuf>,

    /// JSON log file, appended to (default: logs/sync.log). Follow it with
    /// `tail -f`.
    #[arg(long, global = true, env = "SYNC_LOG_FILE", value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,

    /// Print plain lines instead of progress bars, even on a terminal.
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Price a sync before running it: the batches and requests the run
    /// would make (cut by the same planner, from a cheap count the source
    /// gives), and pacing, ETA and budget use for each preset, with the
    /// recommended preset.
    Plan(PlanArgs),
    /// Run a sync into the store. Resumes from the checkpoint by default;
    /// Ctrl-C finishes or rolls back the batch in flight and records the run
    /// as cancelled.
    #[command(alias = "sync")]
    Run(RunArgs),
    /// Share a sync with other workers, on this machine or others, through
    /// the Postgres store: each worker claims batches from a queue in the
    /// database (a killed worker's batches are taken over when its lease
    /// expires) and all hold one request budget. Start the same command on
    /// every worker.
    Worker(WorkerArgs),
    /// How much of the target range is stored: percentage, gaps, a calendar
    /// of covered and missing days, and the last runs.
    Status(TargetArgs),
    /// The run history; `history show RUN` lists what one run created and
    /// updated, field by field.
    History(HistoryArgs),
    /// Compare per-day record counts in the store with the source's counts
    /// and list the days that differ.
    Verify(TargetArgs),
    /// Show the effective configuration (secrets masked), or list presets.
    Config(ConfigArgs),
    /// Start the bundled simulators on loopback and run a complete sync into
    /// the embedded SQLite store, then show the status. Needs no account and
    /// no database server.
    Demo(DemoArgs),
    /// Serve a read-only web dashboard of the store on this machine:
    /// coverage of every stream, calendars, the run history with what each
    /// run changed, runs in progress (and a JSON API of the same). Prints
    /// `serving on http://ADDRESS` first; Ctrl-C stops it. With a YClients
    /// account configured it also receives its webhooks (POST on [serve]
    /// hooks_path) as hints: each is kept in the store at once, and the
    /// hinted streams are synced with short deltas within the budget.
    Serve(ServeArgs),
}

/// Which system to sync from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceKind {
    /// YClients REST API: visits/records by day.
    Yclients,
    /// YClients REST API: the client list.
    YclientsClients,
    /// YClients REST API: the whole company, stream after stream (service
    /// categories, services, staff, clients, then records).
    YclientsAll,
    /// The kennel's booking web app (scraped): boardings by day.
    Kennel,
}

/// Selects the source and the target range.
#[derive(Debug, Args, Clone)]
pub(crate) struct TargetArgs {
    /// The source (default from the config file's [sync] source).
    #[arg(long, value_enum)]
    pub(crate) source: Option<SourceKind>,
    /// First local day of the target range, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub(crate) from: Option<String>,
    /// Last local day of the target range (inclusive), YYYY-MM-DD or `today`.
    #[arg(long, value_name = "DATE")]
    pub(crate) to: Option<String>,
    /// Company id (YClients); repeat for several companies, or `all` for
    /// every company the account manages (GET /companies?my=1). Companies
    /// run side by side within one budget.
    #[arg(long = "company", value_name = "ID|all", value_parser = parse_company)]
    pub(crate) companies: Vec<Company>,
}

/// A `--company` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Company {
    /// Every company the account manages.
    All,
    /// One company.
    Id(u64),
}

fn parse_company(text: &str) -> Result<Company, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Company::All);
    }
    match text.trim().parse::<u64>() {
        Ok(id) if id > 0 => Ok(Company::Id(id)),
        _ => Err(format!(
            "{text:?} is not a company: give a positive id or `all`"
        )),
    }
}

impl TargetArgs {
    /// Whether `--company all` was given.
    pub(crate) fn all_companies(&self) -> bool {
        self.companies.contains(&Company::All)
    }
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Source and target range.
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Pacing preset: aggressive, balanced, conservative or night.
    #[arg(long, value_name = "NAME")]
    pub(crate) preset: Option<String>,
    /// Days (or ids) per batch. Default: as the source describes itself
    /// (windows sized to fill whole pages, a weekly schedule page, a page
    /// of client ids). With --source yclients-all: days per window of the
    /// records.
    #[arg(long, value_name = "N")]
    pub(crate) batch_size: Option<u32>,
    /// Pause after each stretch of work (the preset says how long a
    /// stretch is), e.g. `5s`, `500ms`, `2m`.
    #[arg(long, value_name = "DURATION")]
    pub(crate) interval: Option<String>,
    /// Stop after this many batches; the next run continues.
    #[arg(long, value_name = "N")]
    pub(crate) max_batches: Option<usize>,
    /// Wait until this local time (HH:MM, in the source's time zone) before
    /// starting.
    #[arg(long, value_name = "HH:MM")]
    pub(crate) start_at: Option<String>,
    /// Fetch and count, write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Re-sync days that are already covered.
    #[arg(long)]
    pub(crate) force: bool,
    /// Fetch only what changed since the last successful run.
    #[arg(long)]
    pub(crate) delta: bool,
    /// Oldest days first (default: newest first).
    #[arg(long)]
    pub(crate) oldest_first: bool,
    /// Resume from the checkpoint (what every run does; accepted for the
    /// original scripts' spelling).
    #[arg(long)]
    pub(crate) resume: bool,
}

/// Arguments of `worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// What to sync, as for `run`.
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// This worker's name, unique among the workers (default: host name and
    /// process id).
    #[arg(long, value_name = "NAME")]
    pub(crate) id: Option<String>,
    /// How long a claimed batch stays this worker's without a heartbeat,
    /// e.g. `15s`: when the worker dies, others take over after this long.
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub(crate) lease: String,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Source and target range (the source is asked for a count of the
    /// range when --records is not given).
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Number of records in the range, in place of asking the source.
    #[arg(long, value_name = "N")]
    pub(crate) records: Option<u64>,
    /// Requests per second allowed by the API (default: the source's
    /// documented limit).
    #[arg(long, value_name = "N")]
    pub(crate) per_second: Option<u32>,
    /// Requests per minute allowed by the API (default: the source's
    /// documented limit).
    #[arg(long, value_name = "N")]
    pub(crate) per_minute: Option<u32>,
    /// Price a delta run: what changed since the last completed run, or,
    /// for a source without delta (the kennel), the days due for a re-check.
    #[arg(long)]
    pub(crate) delta: bool,
    /// Price a forced run (covered days fetched again).
    #[arg(long)]
    pub(crate) force: bool,
}

/// Arguments of `history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// `show RUN` for one run's changes.
    #[command(subcommand)]
    pub(crate) show: Option<HistoryCommand>,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
}

/// Sub-commands of `history`.
#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// What one run created, updated and deleted, field by field.
    Show {
        /// The run id (as listed by `history`).
        run: String,
        /// How many changed records to list.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
}

/// Arguments of `config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// What to show.
    #[command(subcommand)]
    pub(crate) action: Option<ConfigAction>,
}

/// Sub-commands of `config`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigAction {
    /// The effective configuration, secrets masked (the default).
    Show,
    /// The pacing presets and what each one does.
    Presets,
    /// Write `preset = NAME` into the [sync] section of the config file.
    Apply {
        /// The preset.
        preset: String,
    },
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Days of simulated history to import.
    #[arg(long, default_value_t = 120)]
    pub(crate) days: u32,
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. The default answers this machine only; the
    /// dashboard has no login, so think before binding another address.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub(crate) bind: std::net::IpAddr,
    /// Port to listen on; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub(crate) port: u16,
    /// The YClients companies whose webhooks are taken (default: the
    /// configured ones).
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}
