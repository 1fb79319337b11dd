#!/bin/sh
# Fails early, saying what to install, when the Rust toolchain is missing or older than the
# workspace's rust-version (Cargo.toml). The Makefile runs it before anything that builds, and
# .ci/run before anything else.
#
#   scripts/check-toolchain.sh          cargo and rustc
#   scripts/check-toolchain.sh lint     also rustfmt and clippy (make lint)
#
# CARGO and RUSTC name other binaries, as cargo itself honours them.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
need=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$here/Cargo.toml")
cargo=${CARGO:-cargo}
rustc=${RUSTC:-rustc}
rustup_how="install Rust $need or newer with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    . \"\$HOME/.cargo/env\"
Debian 12's own rustc (1.63) is too old. As root through sudo, keep your PATH:
    sudo env PATH=\"\$PATH\" make ..."

fail() {
    printf 'jit needs %s\n%s\n' "$1" "$2" >&2
    exit 1
}

command -v "$cargo" >/dev/null 2>&1 || fail "Rust $need or newer: $cargo is not on PATH ($PATH)." "$rustup_how"
command -v "$rustc" >/dev/null 2>&1 || fail "Rust $need or newer: $rustc is not on PATH ($PATH)." "$rustup_how"
have=$("$rustc" --version | sed -n 's/^rustc \([0-9][0-9.]*\).*/\1/p')
[ -n "$have" ] || fail "Rust $need or newer: cannot tell the version of $rustc ($("$rustc" --version 2>&1))." "$rustup_how"
oldest=$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)
[ "$oldest" = "$need" ] || fail "Rust $need or newer; $(command -v "$rustc") is $have." \
    "With rustup: rustup update stable. Otherwise $rustup_how"

if [ "${1:-}" = lint ]; then
    for tool in fmt clippy; do
        "$cargo" "$tool" --version >/dev/null 2>&1 || fail "cargo $tool for make lint." \
            "With rustup: rustup component add rustfmt clippy"
    done
fi
