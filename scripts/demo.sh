#!/usr/bin/env bash
# The main job end to end, with the embedded defaults and nothing installed system-wide:
#   a jit-server with SQLite on loopback (real TLS), an admin who sets up `admin` for group ops,
#   alice who enrolls her TOTP factor and reserves `admin` on web01, a jitd that joined as web01,
#   and alice's login to `admin` through real libpam (pam_jit.so) with her code, plus `admin`
#   resolved through real glibc NSS (libnss_jit.so.2). A second login is refused: single use.
# Needs root (private mount namespaces for /etc/pam.d and /etc/nsswitch.conf; the host's own
# files are never changed), python3, pamtester. Run `cargo build --workspace` first (make demo does).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$here/target}/debug"
for b in jit-server jitctl jitd libpam_jit.so libnss_jit.so; do
    [ -e "$bin/$b" ] || { echo "demo: $bin/$b is missing; run 'cargo build --workspace' first" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it uses private mount namespaces)" >&2; exit 1; }
command -v pamtester >/dev/null || { echo "demo: apt-get install pamtester" >&2; exit 1; }

work=$(mktemp -d /tmp/jit-demo.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
totp() { "$here/scripts/totp.py" "$@"; }

step "jit-server init and run (SQLite, TLS on 127.0.0.1)"
"$bin/jit-server" init --data "$work/server" --json > "$work/init.json"
admin_token=$(json "['admin_token']" < "$work/init.json")
fingerprint=$(json "['ca_fingerprint']" < "$work/init.json")
echo "CA fingerprint: $fingerprint"
"$bin/jit-server" run --data "$work/server" --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.log" &
pids+=("$!")
for _ in $(seq 100); do grep -q '^listening on ' "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { cat "$work/server.log"; exit 1; }
echo "server: $url"

admin() { JITCTL_CONFIG="$work/admin" "$bin/jitctl" "$@"; }
alice() { JITCTL_CONFIG="$work/alice" "$bin/jitctl" "$@"; }

step "admin: login, person, group, shared account, host"
admin login --server "$url" --ca-fingerprint "$fingerprint" --token "$admin_token"
code=$(admin --json person add alice | json "['enrollment_code']")
admin group add ops
admin group add-member ops alice
admin account add admin --uid 60001 --gid 60001 --home /home/admin --shell /bin/bash \
    --group ops --ttl 5m --max-ttl 30m --hosts 'web*'
join_token=$(admin --json host add web01 --label web | json "['join_token']")

step "alice: enroll (her authenticator app is scripts/totp.py)"
# As a script would: jitctl prints the otpauth URI first, then reads the code from stdin.
mkfifo "$work/enroll.in"
alice --json enroll "$code" --server "$url" --ca-fingerprint "$fingerprint" <"$work/enroll.in" >"$work/enroll.out" &
enroll_pid=$!
exec 3>"$work/enroll.in"
for _ in $(seq 100); do [ -s "$work/enroll.out" ] && break; sleep 0.1; done
uri=$(head -n1 "$work/enroll.out" | json "['otpauth_uri']")
totp "$uri" >&3
exec 3>&-
wait "$enroll_pid"
tail -n1 "$work/enroll.out"

step "web01: jitd join and run"
mkdir -p "$work/host/etc" "$work/host/run" "$work/host/state" "$work/host/pam.d" "$work/host/nss"
cat > "$work/host/jitd.toml" <<TOML
host_key = "$work/host/etc/host.key"
ca = "$work/host/etc/ca.pem"
socket = "$work/host/run/pam.sock"
nss_cache = "$work/host/run/nss.cache"
state_dir = "$work/host/state"
TOML
JITD_JOIN_TOKEN="$join_token" "$bin/jitd" join --config "$work/host/jitd.toml"
"$bin/jitd" run --config "$work/host/jitd.toml" 2>"$work/jitd.log" &
pids+=("$!")
for _ in $(seq 100); do [ -S "$work/host/run/pam.sock" ] && break; sleep 0.1; done
[ -S "$work/host/run/pam.sock" ] || { cat "$work/jitd.log"; exit 1; }

# The PAM stack of a service on web01, as docs/pam.md recommends, with pam_exec showing the
# session environment.
m="$bin/libpam_jit.so socket=$work/host/run/pam.sock cache=$work/host/run/nss.cache"
cat > "$work/host/pam.d/jit-demo" <<PAM
auth     [success=done ignore=ignore default=die] $m
auth     required pam_deny.so
account  [success=ok ignore=ignore default=die] $m
account  required pam_permit.so
session  [success=ok ignore=ignore default=die] $m
session  optional pam_exec.so stdout /usr/bin/env
PAM
login() {  # login ACCOUNT CODE: pamtester through real libpam with web01's /etc/pam.d
    echo "$2" | unshare -m sh -ec 'mount --bind "$1" /etc/pam.d; shift; exec pamtester -I rhost=192.0.2.10 jit-demo "$@" authenticate acct_mgmt open_session close_session' \
        sh "$work/host/pam.d" "$1"
}

step "alice: reserve admin on web01"
alice reserve admin --host web01 --for 5m --reason "patch openssl"
alice status

step "alice: log in to admin on web01 with her code (real libpam, pam_jit.so)"
# Her enrollment used the current 30 s step; the server accepts each step once, so she types the
# next one (within the ±1 step skew).
login admin "$(totp "$uri" 1)" | grep -E 'Verification|successfully|JIT_PERSON'

step "admin resolves through real glibc NSS (libnss_jit.so.2)"
cp "$bin/libnss_jit.so" "$work/host/nss/libnss_jit.so.2"
printf 'passwd: files jit\ngroup: files jit\nshadow: files jit\n' > "$work/host/nss/nsswitch.conf"
# nss_jit reads /run/jitd/nss.cache: in the namespace, /run is a fresh tmpfs holding only that
# (the machine's /run is not touched, not even by a mount point).
LD_LIBRARY_PATH="$work/host/nss" unshare -m sh -ec '
    mount -t tmpfs -o mode=0755 tmpfs /run
    mkdir /run/jitd
    mount --bind "$1/run" /run/jitd
    mount --bind "$1/nss/nsswitch.conf" /etc/nsswitch.conf
    getent passwd admin; getent group admin; id admin' sh "$work/host"

step "a second login with the same reservation is refused (single use)"
if login admin "$(totp "$uri" 1)"; then echo "demo: the second login was accepted" >&2; exit 1; fi

step "admin: the audit log"
admin audit --account admin --since 1h
printf '\n\033[1mdemo OK\033[0m\n'
