#!/usr/bin/env bash
# Runs every test of the workspace. The Postgres tests get a throwaway
# PostgreSQL server started from this machine's binaries (or DATABASE_URL).
# The dashboard's browser test needs a headless Chromium and chromedriver:
# installed here from Debian packages when missing (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update && apt-get install -y chromium chromium-driver)
    elif command -v sudo >/dev/null; then
        (sudo apt-get update && sudo apt-get install -y chromium chromium-driver)
    else
        echo "chromedriver is missing and cannot be installed (not root, no sudo):" \
             "the dashboard's browser test will fail under CI, skip otherwise" >&2
    fi
fi
exec scripts/with-postgres.sh cargo test --workspace --all-features "$@"
