#!/usr/bin/env bash
# Every benchmark in release mode, the results table, then the criterion
# micro-benchmarks. Postgres parts need DATABASE_URL; run it as
#
#   scripts/with-postgres.sh benches/run.sh
#
# to get a throwaway server (without it they are skipped, and say so).
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
cargo run --release -p sync-benches --bin all || status=$?
cargo bench -p sync-benches --bench core || status=$?
exit "$status"
