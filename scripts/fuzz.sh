#!/usr/bin/env bash
# Runs jit's fuzz targets (fuzz/, docs/security.md "Fuzzing") with cargo-fuzz and libFuzzer.
#
#   scripts/fuzz.sh short            every target for 30 s (make test runs this)
#   scripts/fuzz.sh runs N [TARGET]  every target (or one) for N executions, printing the figures
#
# cargo-fuzz is installed once into target/tools (pinned). It needs nightly flags, which
# RUSTC_BOOTSTRAP=1 allows on the stable toolchain. No sanitizer: the parsers under test are
# safe Rust, so the findings are panics, failed assertions, timeouts and runaway memory, which
# libFuzzer catches without one. Corpus: fuzz/corpus/TARGET in the repository (seeds, and what
# `cargo fuzz cmin` kept of the long runs), plus target/fuzz/corpus/TARGET for what a run finds.
# A crash leaves its input in fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
TOOLS="$PWD/target/tools"
CARGO_FUZZ="$TOOLS/bin/cargo-fuzz"
TARGETS=(pam_frame nss_cache join_token jitd_config server_config api_json)

if ! "$CARGO_FUZZ" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
    echo "Installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS (once)"
    CARGO_TARGET_DIR="$TOOLS/build-fuzz" CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
        CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_DEBUG=false \
        cargo install --quiet --locked --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
    rm -rf "$TOOLS/build-fuzz"
fi

export RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0
fuzz() { "$CARGO_FUZZ" "$1" --fuzz-dir fuzz -s none -a "${@:2}"; }

mode=${1:-short}
case "$mode" in
    short) limit=(-max_total_time=30); targets=("${TARGETS[@]}") ;;
    runs) limit=(-runs="${2:?how many executions}")
          if [ -n "${3:-}" ]; then targets=("$3"); else targets=("${TARGETS[@]}"); fi ;;
    *) echo "usage: $0 short | runs N [TARGET]" >&2; exit 2 ;;
esac

fuzz build
for t in "${targets[@]}"; do
    # New inputs go to a scratch corpus under target/; the repository's corpus (fuzz/corpus/TARGET,
    # seeds and the minimized result of the long runs) is only read.
    scratch="target/fuzz/corpus/$t"
    mkdir -p "$scratch" "fuzz/corpus/$t"
    start=$(date +%s)
    # -rss_limit_mb: a parser that balloons on a small input is a finding too.
    log="target/fuzz/$t-$$.log"
    fuzz run "$t" "$scratch" "fuzz/corpus/$t" -- "${limit[@]}" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        2>"$log" || { tail -40 "$log"; echo "fuzz: $t failed; input in fuzz/artifacts/$t" >&2; exit 1; }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "$t: $runs executions in $(( $(date +%s) - start )) s, 0 crashes, corpus $(find "$scratch" "fuzz/corpus/$t" -type f | wc -l) inputs"
    rm -f "$log"
done
