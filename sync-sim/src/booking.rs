//! Simulator of the hosted booking web app (scraped by sync-source-scraper).
