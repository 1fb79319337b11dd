#!/bin/sh
# Crash durability: concurrent clients make RESERVATIONS reservations (default 10000) while
# jit-server is killed with SIGKILL at random moments; afterwards every acknowledged reservation
# and release must be in the database and no account held twice (docs/security.md).
#
# Usage: scripts/crash-durability.sh [RESERVATIONS [CLIENTS [SEED]]]
# Set PROFILE=release for a release build (the figures in docs/security.md are from debug).
set -eu
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
flag=""
[ "${PROFILE:-debug}" = release ] && flag="--release"
# shellcheck disable=SC2086
cargo build -q $flag --workspace --all-targets
# shellcheck disable=SC2086
exec cargo run -q $flag -p jit_tests --example crash_durability -- "$@"
