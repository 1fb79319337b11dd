#!/usr/bin/env bash
# Runs COMMAND and fails if it leaves anything behind: a process still running, or a file or
# directory in /tmp, /var/tmp, /run or /dev/shm. `make test` and `make demo` run under it.
#
#   scripts/no-leftovers.sh COMMAND [ARG...]
#
# How: COMMAND runs in a private PID namespace and a private mount namespace in which /tmp,
# /var/tmp and /dev/shm are empty tmpfs of its own, and /run is an overlay of the machine's /run:
# COMMAND sees what is there (resolv.conf may point into it), and everything it writes there
# lands in a scratch layer. When COMMAND is done, every process still in the PID namespace, every
# entry in the private directories and every entry in the scratch layer is the run's own, never
# that of someone else working on the machine at the same time. They are listed and the run
# fails. Either way none of it reaches the machine: the processes end with the namespace, and
# the tmpfs with them. (/tmp is no overlay because the tests stack overlays of their own on
# directories under it, and the kernel allows only two levels.)
#
# Needs root (unshare, mount), util-linux, procps and overlayfs (Linux 4.0 or later).
set -euo pipefail

private=(/tmp /var/tmp /dev/shm)
overlaid=(/run)
watched=("${private[@]}" "${overlaid[@]}")

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
for d in "${private[@]}"; do
    [ -d "$d" ] || continue
    mount -t tmpfs -o "mode=$(stat -c %a "$d"),nosuid,nodev" no-leftovers "$d"
done
for d in "${overlaid[@]}"; do
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

# Leftovers whose cause is known but not fixed yet: each is named, with its cause, and does not
# fail the run. Delete its line once the cause is fixed.
known() {  # known PATH: says why PATH is let through, or fails
    case "$1" in
        /run/jitd/)
            # Only as an empty mount point.
            [ -z "$(ls -A "$scratch/_run/upper/jitd")" ] || return 1
            echo "a mount point made on the machine by tests/src/host.rs (Host::nss)," \
                "tests/src/sshd/system.rs (System::new) and nss_jit/tests/glibc.rs" ;;
        *) return 1 ;;
    esac
}
failed=0
tolerated=0
declare -A said
left() {  # left PATH WHAT: PATH was left behind
    if why=$(known "$1"); then
        if [ -n "${said[$why]:-}" ]; then
            echo "no-leftovers: known, cause not fixed yet: $1 (the same)" >&2
        else
            echo "no-leftovers: known, cause not fixed yet: $1 ($why)" >&2
            said[$why]=1
        fi
        tolerated=1
    else
        echo "no-leftovers: the run $2" >&2
        failed=1
    fi
}

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

# Files: what the run created in a private directory, and what it created or changed in an
# overlaid one. A whiteout (a character device 0:0) is something the run deleted, and a
# directory that was there before is in the scratch layer only because something inside it
# changed: neither is left behind by itself.
for d in "${private[@]}"; do
    [ -d "$d" ] || continue
    while IFS= read -r -d '' rel; do
        left "$d/${rel#./}" "left $d/${rel#./}"
    done < <(cd "$d" && find . -mindepth 1 -maxdepth 1 -print0)
done
for d in "${overlaid[@]}"; do
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
            left "$d/$rel/" "left $d/$rel/ (a directory)"
        elif [ -e "$n/lower/$rel" ] || [ -L "$n/lower/$rel" ]; then
            left "$d/$rel" "changed $d/$rel, which was there before"
        else
            left "$d/$rel" "left $d/$rel"
        fi
    done < <(cd "$n/upper" && find . -mindepth 1 -print0)
done

if [ "$failed" = 1 ]; then
    echo "no-leftovers: every test must end every process it starts and remove what it writes" \
        "to ${watched[*]}; none of the above reached the machine" >&2
    [ "$status" != 0 ] || status=1
elif [ "$status" = 0 ] && [ "$interrupted" = 0 ] && [ "$tolerated" = 0 ]; then
    echo "no-leftovers: nothing left running, nothing left in ${watched[*]}"
elif [ "$status" = 0 ] && [ "$interrupted" = 0 ]; then
    echo "no-leftovers: nothing left running, nothing left in ${watched[*]} but the known" \
        "leftovers above (none of them reached the machine)"
fi
[ "$interrupted" = 0 ] || [ "$status" != 0 ] || status=130
exit "$status"
