#!/usr/bin/env bash
# Runs COMMAND and fails if it leaves anything behind: a process still running, or a file or
# directory in /tmp, /var/tmp, /run or /dev/shm. `make test` and `make demo` run under it.
#
#   scripts/no-leftovers.sh COMMAND [ARG...]
#
# How: COMMAND runs in a private PID namespace and a private mount namespace in which /tmp,
# /var/tmp, /run and /dev/shm are overlays of the machine's own: COMMAND sees the files that are
# there, and everything it writes there lands in a scratch layer. When COMMAND is done, every
# process still in the PID namespace and every entry in a scratch layer is the run's own, never
# that of someone else working on the machine at the same time. They are listed and the run
# fails. Either way none of it reaches the machine: the processes end with the namespace, and
# the scratch layers are a tmpfs that goes with it.
#
# Needs root (unshare, mount), util-linux, procps and overlayfs (Linux 4.0 or later).
set -euo pipefail

watched=(/tmp /var/tmp /run /dev/shm)

if [ "${1:-}" != --inside ]; then
    [ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || {
        echo "no-leftovers: run as root (private PID and mount namespaces for the run)" >&2
        exit 1
    }
    # --kill-child: if this process dies, so does everything in the namespace.
    exec unshare --mount --propagation private --pid --fork --mount-proc --kill-child \
        "$0" --inside "$@"
fi
shift

# PID 1 of the namespace from here on. A scratch tmpfs, mounted on a directory in the build tree
# (not in a watched one); the mount is private to this namespace.
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=${CARGO_TARGET_DIR:-$here/target}/no-leftovers
mkdir -p "$scratch"
mount -t tmpfs -o mode=0700 no-leftovers "$scratch"
for d in "${watched[@]}"; do
    [ -d "$d" ] || continue
    n=$scratch/${d//\//_}
    mkdir -p "$n/lower" "$n/upper" "$n/work"
    mount --bind "$d" "$n/lower"             # the machine's files, still reachable below
    chmod --reference="$d" "$n/upper"
    chown --reference="$d" "$n/upper"
    mount -t overlay overlay -o "lowerdir=$n/lower,upperdir=$n/upper,workdir=$n/work" "$d"
done

# A ^C reaches every process of the run; this shell carries on to report what was left.
trap 'interrupted=1' INT TERM
interrupted=0
status=0
"$@" || status=$?

failed=0
# Processes: everything but this shell, ps itself, and zombies this shell has yet to reap.
ps -e -o pid=,stat=,args= > "$scratch/ps" || true
left=$(awk '$1 != 1 && $2 !~ /^Z/ && $3 != "ps" { print }' "$scratch/ps")
if [ -n "$left" ]; then
    echo >&2
    echo "no-leftovers: the run left these processes running (now stopped):" >&2
    printf '%s\n' "$left" | sed 's/^ */    /' >&2
    failed=1
    for p in $(printf '%s\n' "$left" | awk '{print $1}'); do kill -TERM "$p" 2>/dev/null || true; done
fi

# Files: what the run created or changed in a watched directory. A whiteout (a character device
# 0:0) is something the run deleted, and a directory that was there before is in the scratch
# layer only because something inside it changed: neither is left behind by itself.
for d in "${watched[@]}"; do
    n=$scratch/${d//\//_}
    [ -d "$n/upper" ] || continue
    new_dirs=()
    while IFS= read -r -d '' rel; do
        rel=${rel#./}
        f=$n/upper/$rel
        for parent in "${new_dirs[@]}"; do
            case "$rel" in "$parent"/*) continue 2 ;; esac
        done
        if [ -c "$f" ] && [ "$(stat -c %t:%T "$f")" = 0:0 ]; then
            continue
        elif [ -d "$f" ] && [ ! -L "$f" ]; then
            [ -d "$n/lower/$rel" ] && continue
            new_dirs+=("$rel")
            echo "no-leftovers: the run left $d/$rel/ (a directory)" >&2
        elif [ -e "$n/lower/$rel" ] || [ -L "$n/lower/$rel" ]; then
            echo "no-leftovers: the run changed $d/$rel, which was there before" >&2
        else
            echo "no-leftovers: the run left $d/$rel" >&2
        fi
        failed=1
    done < <(cd "$n/upper" && find . -mindepth 1 -print0)
done

if [ "$failed" = 1 ]; then
    echo "no-leftovers: every test must end every process it starts and remove what it writes" \
        "to ${watched[*]}; none of the above reached the machine" >&2
    [ "$status" != 0 ] || status=1
elif [ "$status" = 0 ] && [ "$interrupted" = 0 ]; then
    echo "no-leftovers: nothing left running, nothing left in ${watched[*]}"
fi
[ "$interrupted" = 0 ] || [ "$status" != 0 ] || status=130
exit "$status"
