#!/usr/bin/env bash
# Runs every test of the workspace. The Postgres tests get a throwaway
# PostgreSQL server started from this machine's binaries (or DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-postgres.sh cargo test --workspace --all-features "$@"
