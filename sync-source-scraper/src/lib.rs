//! # sync-source-scraper
//!
//! A [`sync_core::Source`] that imports kennel boardings from the hosted
//! booking web app by scraping it, as a person would: log in through the
//! HTML form, open the schedule, open each appointment.
//!
//! - [`ScraperConfig`]: base URL, credentials (from the environment or
//!   given), time zone, session max age, pacing, timeouts, retries, and the
//!   site's paths, selectors and boarding rules ([`Selectors`], read from
//!   `[kennel.selectors]`).
//! - [`ScraperSource`]: the source; entity `boarding`, stream
//!   `kennel:<host>/boardings`, one record per boarding on its local
//!   check-in day.
//!
//! Sessions: an expired session shows as a redirect to the login page or as
//! the login form in a 200 page; the source logs in again once and repeats
//! the request, and renews the session before a batch when it is older than
//! [`ScraperConfig::session_max_age`]. A second login page right after a
//! fresh login is [`sync_core::SyncError::Unauthenticated`].
//!
//! Errors: 5xx, timeouts and truncated pages are retryable (retried per
//! [`ScraperConfig::retry`]); a page that lacks what we need is
//! [`sync_core::SyncError::BadData`] naming the URL and the element; a
//! rejected login is `Unauthenticated` with the site's message (never the
//! password).

mod client;
mod config;
mod error;
mod site;
mod source;

pub use config::{
    ScraperConfig, ENV_BASE_URL, ENV_PASSWORD, ENV_SESSION_MAX_AGE_SECS, ENV_TZ, ENV_USERNAME,
};
pub use site::Selectors;
pub use source::{ScraperSource, ENTITY, STREAM, VOLATILE_FIELDS};
