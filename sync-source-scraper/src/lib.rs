//! # sync-source-scraper
//!
//! A [`sync_core::Source`] that imports kennel boardings from the hosted
//! booking web app by scraping it, as a person would: log in through the
//! HTML form, open the schedule, open each appointment.
//!
//! - [`ScraperConfig`]: base URL, credentials (from the environment or
//!   given), time zone, session max age, pacing, timeouts, and the site's
//!   paths, selectors and boarding rules ([`Selectors`], read from
//!   `[kennel.selectors]`).
//! - [`ScraperSource`]: the source; entity `boarding`, stream
//!   `kennel:<host>/boardings`, one record per boarding on its local
//!   check-in day; a batch is a week (one schedule page, then a detail page
//!   per appointment); per-day counts and a count probe from the schedule
//!   pages.
//!
//! The source makes one attempt of one request per call, as the core's
//! `Source` contract asks. Retries ([`ScraperConfig::polite_retry`] is the
//! policy that suits the site), session renewal and pacing are the core's
//! wrappers, which the engine adds: the first request logs in (two
//! requests: the form and its POST), the session is renewed before
//! [`ScraperConfig::session_max_age`], and once more when a page shows it
//! expired (a redirect to the login page, or the login form in a 200 page:
//! [`sync_core::SyncError::AuthExpired`]).
//!
//! Errors: 5xx, timeouts and truncated pages are retryable; a page that
//! lacks what we need (a schedule page that is not one, a price block
//! without its price items) is [`sync_core::SyncError::BadData`] naming the
//! URL and what was missing, so the batch fails and its days stay
//! uncovered; a rejected login is `Unauthenticated` with the site's message
//! (never the password).

mod client;
mod config;
mod error;
mod site;
mod source;

pub use config::{
    ScraperConfig, ENV_BASE_URL, ENV_PASSWORD, ENV_SESSION_MAX_AGE_SECS, ENV_TZ, ENV_USERNAME,
};
pub use site::Selectors;
pub use source::{ScraperSource, ENTITY, REUSE_WITHIN, STREAM, VOLATILE_FIELDS};
