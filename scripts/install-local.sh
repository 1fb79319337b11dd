#!/bin/sh
# `make install-local PREFIX=DIR`: jit for a trial, without packages and without writing to /etc,
# /run or /var. Copies the binaries built in BUILD (target/debug by default) into DIR:
#
#   DIR/bin/            jit-server, jitctl, jitd
#   DIR/lib/            pam_jit.so and libnss_jit.so.2 (for a PAM stack or an NSS test of your own)
#   DIR/share/man/      the man pages
#   DIR/share/{bash-completion/completions,zsh/site-functions,fish/vendor_completions.d}/
#   DIR/etc/jit/jitd.toml   jitd's configuration for the trial: every path jitd writes is under
#                       DIR (written once; an existing file is kept)
#
#   scripts/install-local.sh DIR [BUILD]
set -eu

prefix=${1:?usage: install-local.sh DIR [BUILD]}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-${CARGO_TARGET_DIR:-$here/target}/debug}
case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac

for f in jit-server jitctl jitd jit-man libpam_jit.so libnss_jit.so; do
    [ -e "$build/$f" ] || { echo "install-local: $build/$f is missing; run make build first" >&2; exit 1; }
done

mkdir -p "$prefix/bin" "$prefix/lib" "$prefix/etc/jit" "$prefix/share/man"
for f in jit-server jitctl jitd; do
    install -m 0755 "$build/$f" "$prefix/bin/$f"
done
install -m 0644 "$build/libpam_jit.so" "$prefix/lib/pam_jit.so"
install -m 0644 "$build/libnss_jit.so" "$prefix/lib/libnss_jit.so.2"

pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$build/jit-man" man "$pages" >/dev/null
for page in "$pages"/*; do
    section=${page##*.}
    mkdir -p "$prefix/share/man/man$section"
    install -m 0644 "$page" "$prefix/share/man/man$section/"
done
"$build/jit-man" completions "$pages/completions" >/dev/null
for pair in bash:bash-completion/completions zsh:zsh/site-functions fish:fish/vendor_completions.d; do
    mkdir -p "$prefix/share/${pair#*:}"
    install -m 0644 "$pages/completions/${pair%%:*}"/* "$prefix/share/${pair#*:}/"
done

config=$prefix/etc/jit/jitd.toml
if [ ! -e "$config" ]; then
    cat > "$config" <<EOF
# jitd for a trial: everything it writes stays under $prefix (see jitd.toml(5)).
#   jitd join --token TOKEN --config $config
#   jitd run --config $config
host_key = "$prefix/etc/jit/host.key"
ca = "$prefix/etc/jit/ca.pem"
socket = "$prefix/run/jitd/pam.sock"
nss_cache = "$prefix/run/jitd/nss.cache"
state_dir = "$prefix/var/lib/jitd"
EOF
    note="wrote $config"
else
    note="kept $config"
fi
"$prefix/bin/jitd" check-config --config "$config" >/dev/null || {
    echo "install-local: $config is not a valid jitd configuration (jitd check-config --config $config)" >&2
    exit 1
}

cat <<EOF
Installed jit-server, jitctl and jitd into $prefix/bin ($note).
For this shell:
    export PATH="$prefix/bin:\$PATH" MANPATH="$prefix/share/man:"
    . $prefix/share/bash-completion/completions/jitctl
Remove it all with: rm -rf $prefix
EOF
