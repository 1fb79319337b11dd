#!/bin/sh
# Package tests: the .deb and .rpm files in PKG_DIR, checked statically and then installed,
# used and removed in a throwaway Debian 12 root.
#
#   packaging/tests/packages.sh PKG_DIR          (make test-packages runs it on the debug build)
#
# Static: shellcheck on the maintainer scripts, the package contents (dpkg -c, rpm -qlp), the
# conffiles, lintian (no error or warning that is not overridden with a reason), rpmlint (no
# error), the glibc symbol versions against the RPM's documented requirement.
# The nsswitch.conf edits of postinst/postrm (the same functions as the RPM scriptlets) on a table
# of lines: tabs, `files [NOTFOUND=return]`, a jit the admin had before (never touched).
# In the chroot (debootstrap --variant=minbase bookworm, built once and cached under
# target/pkgtest/, copied for each run): install jit-host and jit-server; a host that has not
# joined behaves exactly as before; the packaged jit-server (as its own user) and jitd (started by
# hand: there is no systemd in a chroot) serve `getent passwd admin` and a pamtester login through
# the installed PAM stacks; systemd-analyze verify on both units, inside that root; removal is
# refused while a file in /etc/pam.d still names pam_jit.so (and dpkg's abort path leaves the
# package and the stacks as they were); remove and purge leave /etc/nsswitch.conf and /etc/pam.d
# byte-identical to the snapshot taken before the install; remove keeps /var/lib/jitd, purge
# deletes it; reinstalling after a remove restores the configuration; an install over locally
# modified common-* warns; the RPM scriptlets, run in the root (authselect too).
#
# Needs root, network access to deb.debian.org for the first run (JIT_PKGTEST_MIRROR overrides),
# and: debootstrap lintian rpm rpmlint systemd shellcheck python3 util-linux.
# Never touches the host's /etc: everything happens under the chroot, whose /proc, /dev and /run
# are private mounts that the EXIT trap always unmounts. JIT_PKGTEST_KEEP=1 keeps the root.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
pkgs=${1:?usage: packages.sh PKG_DIR}
pkgs=$(cd "$pkgs" && pwd)
cache=${JIT_PKGTEST_CACHE:-$here/target/pkgtest}
mirror=${JIT_PKGTEST_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# Everything a run needs inside the root (systemd: its units, for systemd-analyze verify);
# changing this list rebuilds the cached root.
include=pamtester,adduser,init-system-helpers,libpam-modules,libpam-runtime,systemd
arch=x86_64-linux-gnu

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing (apt-get install $2)"; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap, chroot, mounts)"
for t in debootstrap:debootstrap lintian:lintian rpm:rpm rpmlint:rpmlint \
    systemd-analyze:systemd shellcheck:shellcheck python3:python3 dpkg-deb:dpkg \
    unshare:util-linux; do
    need "${t%%:*}" "${t#*:}"
done

one() {  # one GLOB: the single file matching it
    # shellcheck disable=SC2086
    set -- $1
    if [ "$#" != 1 ] || [ ! -e "$1" ]; then fail "expected exactly one file, found: $*"; fi
    printf '%s\n' "$1"
}
host_deb=$(one "$pkgs/jit-host_*_amd64.deb")
server_deb=$(one "$pkgs/jit-server_*_amd64.deb")
host_rpm=$(one "$pkgs/jit-host-*.x86_64.rpm")
server_rpm=$(one "$pkgs/jit-server-*.x86_64.rpm")

work=$(mktemp -d /tmp/jit-pkgtest.XXXXXX)
root=
mounts=""
pids=""
cleanup() {
    status=$?
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    # Whatever still runs inside the root (a step that failed half-way) is ours too.
    if [ -n "$root" ]; then
        for p in /proc/[0-9]*; do
            if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
                kill -KILL "${p#/proc/}" 2>/dev/null || true
            fi
        done
    fi
    # Unmount in reverse order of mounting; a busy mount is detached lazily.
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    if [ -n "$root" ] && [ -d "$root" ]; then
        if grep -q " $root/" /proc/self/mounts; then
            echo "packages.sh: something is still mounted under $root; not deleting it" >&2
        elif [ "${JIT_PKGTEST_KEEP:-0}" = 1 ] && [ "$status" != 0 ]; then
            echo "packages.sh: kept the root at $root" >&2
        else
            rm -rf --one-file-system "$root"
        fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------------------------
step "shellcheck: maintainer scripts and this script"
shellcheck -s sh "$here"/packaging/deb/jit-host/* "$here"/packaging/deb/jit-server/* \
    "$here"/packaging/rpm/*/*.sh "$0"

completions() {  # completions ZSH_DIR NAME...: the bash, zsh and fish completion files of NAMEs
    zsh_dir=$1; shift
    for n in "$@"; do
        printf '%s\n' "/usr/share/bash-completion/completions/$n" "$zsh_dir/_$n" \
            "/usr/share/fish/vendor_completions.d/$n.fish"
    done
}
each_binary_has_its_man_page() {  # each_binary_has_its_man_page WHAT LIST
    grep -E '^/usr/s?bin/[^/]+$' "$2" | while read -r b; do
        grep -Eq "^/usr/share/man/man[1-8]/$(basename "$b")\.[1-8]\.gz\$" "$2" \
            || fail "$1 has no man page for $b"
    done
}

step "contents of the .deb files"
dpkg-deb -c "$host_deb" | awk '{print $6}' | sed 's|^\./|/|' | sort > "$work/host.list"
dpkg-deb -c "$server_deb" | awk '{print $6}' | sed 's|^\./|/|' | sort > "$work/server.list"
for p in /usr/sbin/jitd /usr/bin/jitctl \
    "/usr/lib/$arch/security/pam_jit.so" "/usr/lib/$arch/libnss_jit.so.2" \
    /usr/lib/systemd/system/jitd.service /usr/share/pam-configs/jit \
    /usr/share/jit/sshd_config.d/jit.conf /etc/jit/jitd.toml \
    /usr/share/man/man8/jitd.8.gz /usr/share/man/man8/pam_jit.8.gz \
    /usr/share/man/man8/nss_jit.8.gz /usr/share/man/man1/jitctl.1.gz \
    /usr/share/man/man5/jitd.toml.5.gz /usr/share/doc/jit-host/copyright \
    /usr/share/doc/jit-host/examples/pam.d/sshd \
    $(completions /usr/share/zsh/vendor-completions jitd jitctl); do
    grep -qx "$p" "$work/host.list" || fail "jit-host.deb lacks $p"
done
for p in /usr/sbin/jit-server /usr/lib/systemd/system/jit-server.service /etc/jit/server.toml \
    /usr/share/man/man8/jit-server.8.gz /usr/share/man/man5/server.toml.5.gz \
    $(completions /usr/share/zsh/vendor-completions jit-server); do
    grep -qx "$p" "$work/server.list" || fail "jit-server.deb lacks $p"
done
each_binary_has_its_man_page jit-host.deb "$work/host.list"
each_binary_has_its_man_page jit-server.deb "$work/server.list"
! grep -q '^/etc/ssh' "$work/host.list" || fail "the sshd drop-in must not be active (/etc/ssh)"
dpkg-deb -I "$host_deb" conffiles | grep -qx /etc/jit/jitd.toml || fail "jitd.toml is no conffile"
dpkg-deb -I "$server_deb" conffiles | grep -qx /etc/jit/server.toml \
    || fail "server.toml is no conffile"
dpkg-deb -f "$host_deb" Depends | grep -q 'libpam-runtime' || fail "jit-host must depend on libpam-runtime"
dpkg-deb -f "$server_deb" Depends | grep -q 'adduser' || fail "jit-server must depend on adduser"
version=$(dpkg-deb -f "$host_deb" Version)
head -n1 "$here/packaging/deb/changelog" | grep -qF "($version)" \
    || fail "packaging/deb/changelog's first entry is not $version: add an entry"
dpkg-deb -c "$host_deb"
dpkg-deb -c "$server_deb"

step "nsswitch.conf edits of the maintainer scripts, case by case"
# The functions exactly as postinst and postrm define them, run on sample files.
fn() {  # fn NAME FILE: the shell function NAME as FILE defines it
    sed -n "/^$1() {/,/^}/p" "$2"
}
fn nss_add "$here/packaging/deb/jit-host/postinst" > "$work/nss.sh"
fn nss_remove "$here/packaging/deb/jit-host/postrm" >> "$work/nss.sh"
if ! grep -q '^nss_add() {' "$work/nss.sh" || ! grep -q '^nss_remove() {' "$work/nss.sh"; then
    fail "cannot find nss_add/nss_remove in the maintainer scripts"
fi
# The RPM scriptlets carry the same functions, word for word, so these cases cover them too.
for f in nss_add:post.sh:postinst nss_remove:postun.sh:postrm pam_jit_files:preun.sh:prerm; do
    name=${f%%:*}; rpm_script=${f#*:}; rpm_script=${rpm_script%%:*}; deb_script=${f##*:}
    [ -n "$(fn "$name" "$here/packaging/deb/jit-host/$deb_script")" ] \
        || fail "no function $name in packaging/deb/jit-host/$deb_script"
    [ "$(fn "$name" "$here/packaging/rpm/jit-host/$rpm_script")" = \
        "$(fn "$name" "$here/packaging/deb/jit-host/$deb_script")" ] \
        || fail "$name differs between packaging/rpm/jit-host/$rpm_script and packaging/deb/jit-host/$deb_script"
done
# What nss_remove says (nss_removed: "yes" when it took jit out of a line).
cat >> "$work/nss.sh" <<'EOF_SAID'
nss_said() { printf '%s\n' "${nss_removed:-}"; }
EOF_SAID
nss() {  # nss FILE FUNCTION...: runs the functions on FILE, as the scripts would on /etc
    # shellcheck disable=SC1091,SC2034 # the functions read NSSWITCH and NSS_STATE
    (NSSWITCH=$1 NSS_STATE=$1.state; shift; . "$work/nss.sh"; for f in "$@"; do "$f"; done)
}
tab=$(printf '\t')
# Each case: the passwd line before, after the install (nss_add twice), and restored byte for
# byte by the removal (nss_remove twice); the group line is always edited, and gshadow, the
# comment and netgroup never. The state file lists exactly the lines that were edited.
while IFS='|' read -r given expected; do
    [ -n "$given" ] || continue
    printf '%s\ngroup: files\ngshadow: files\n#passwd: files\nnetgroup: nis\n' "$given" > "$work/nss.in"
    cp "$work/nss.in" "$work/nss.conf"
    rm -f "$work/nss.conf.state"
    nss "$work/nss.conf" nss_add nss_add 2> "$work/nss.err" || { cat "$work/nss.err"; fail "nss_add: '$given'"; }
    got=$(head -n1 "$work/nss.conf")
    [ "$got" = "$expected" ] || fail "nsswitch add: '$given' became '$got', expected '$expected'"
    # jit after `files [NOTFOUND=return]` is not asked about names files does not know: a note.
    case "$given" in
        *NOTFOUND*) if [ "$given" != "$expected" ] && ! grep -q 'NOTFOUND=return' "$work/nss.err"; then
                        fail "nss_add: no note about '$given'"
                    fi ;;
    esac
    sed -n '2,$p' "$work/nss.conf" | grep -qx 'group: files jit' || fail "group line not edited"
    if tail -n3 "$work/nss.conf" | grep -q jit; then fail "gshadow, comments or netgroup edited"; fi
    if [ "$given" = "$expected" ]; then want=group; else want="passwd group"; fi
    [ "$(tr '\n' ' ' < "$work/nss.conf.state")" = "$want " ] \
        || fail "nsswitch add: '$given': recorded '$(cat "$work/nss.conf.state")', expected '$want'"
    nss "$work/nss.conf" nss_remove nss_remove
    cmp -s "$work/nss.in" "$work/nss.conf" \
        || fail "nsswitch remove: '$given' not restored: '$(head -n1 "$work/nss.conf")'"
    [ ! -e "$work/nss.conf.state" ] || fail "nsswitch remove: the state file is left"
    echo "ok: '$given' -> '$expected' -> restored"
done <<EOF_CASES
passwd:         files|passwd:         files jit
passwd:${tab}files systemd|passwd:${tab}files jit systemd
passwd:${tab}files${tab}systemd|passwd:${tab}files jit${tab}systemd
passwd: compat|passwd: compat jit
passwd: sss files|passwd: sss files jit
passwd: ldap|passwd: ldap jit
passwd: files [NOTFOUND=return] db|passwd: files [NOTFOUND=return] jit db
passwd: files [NOTFOUND=return]|passwd: files [NOTFOUND=return] jit
passwd:${tab}files${tab}[ NOTFOUND = return ]${tab}db|passwd:${tab}files${tab}[ NOTFOUND = return ] jit${tab}db
passwd: files   |passwd: files jit   
passwd:files|passwd:files jit
passwd: myfiles|passwd: myfiles jit
passwd: jitter|passwd: jitter jit
passwd: files jit systemd|passwd: files jit systemd
passwd: files jit|passwd: files jit
passwd:${tab}files${tab}jit|passwd:${tab}files${tab}jit
passwd: jit files|passwd: jit files
passwd:jit|passwd:jit
passwd: files jit [NOTFOUND=return] db|passwd: files jit [NOTFOUND=return] db
EOF_CASES
# The admin's own jit (there before the install) is never taken out, by remove or purge...
printf 'passwd: files jit\ngroup:\tfiles\tjit\nshadow: files\n' > "$work/nss.in"
cp "$work/nss.in" "$work/nss.conf"
rm -f "$work/nss.conf.state"
nss "$work/nss.conf" nss_add
[ "$(sed -n 3p "$work/nss.conf")" = 'shadow: files jit' ] || fail "shadow line not edited"
[ "$(cat "$work/nss.conf.state")" = shadow ] || fail "recorded lines it did not edit: $(cat "$work/nss.conf.state")"
nss "$work/nss.conf" nss_remove
cmp -s "$work/nss.in" "$work/nss.conf" || fail "the admin's own jit was taken out: $(cat "$work/nss.conf")"
# ... and ours is, even when the admin put a tab before it since; once jit is gone from a line,
# nothing is taken out of it (and nss_removed says whether anything was).
printf 'passwd: files\ngroup: files\nshadow: files\n' > "$work/nss.in"
cp "$work/nss.in" "$work/nss.conf"
nss "$work/nss.conf" nss_add
sed -i "s/^passwd: files jit\$/passwd: files${tab}jit/; s/^shadow: files jit\$/shadow: files/" "$work/nss.conf"
removed=$(nss "$work/nss.conf" nss_remove nss_said)
cmp -s "$work/nss.in" "$work/nss.conf" || fail "a tab-separated jit was not taken out: $(cat "$work/nss.conf")"
[ "$removed" = yes ] || fail "nss_remove took jit out but does not say so"
printf 'passwd: files\n' > "$work/nss.conf"
nss "$work/nss.conf" nss_add
sed -i 's/ jit$//' "$work/nss.conf"
removed=$(nss "$work/nss.conf" nss_remove nss_said)
[ -z "$removed" ] || fail "nss_remove says it took jit out of lines without jit"
echo "ok: the admin's own jit kept, ours taken out (also after a tab), nothing else"

step "the units say what the packages promise"
unit_has() {  # unit_has FILE LINE...
    f=$1; shift
    for l in "$@"; do grep -qxF "$l" "$f" || fail "$(basename "$f") lacks '$l'"; done
}
hardening="ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes
RestrictAddressFamilies=AF_UNIX+AF_INET+AF_INET6 Restart=on-failure"
for u in jitd jit-server; do
    for l in $hardening; do unit_has "$here/packaging/systemd/$u.service" "$(echo "$l" | tr + ' ')"; done
done
# jit-server needs no capability; jitd only CAP_KILL, to end sessions with their reservation.
unit_has "$here/packaging/systemd/jit-server.service" CapabilityBoundingSet=
unit_has "$here/packaging/systemd/jitd.service" CapabilityBoundingSet=CAP_KILL
unit_has "$here/packaging/systemd/jitd.service" Type=notify Before=nss-user-lookup.target \
    Wants=network-online.target ConditionPathExists=/etc/jit/host.key \
    "ReadWritePaths=/var/lib/jitd /run/jitd -/etc/jit/joined"
# Logins wait for nss-user-lookup.target, which jitd comes before: jitd must not wait for the
# network (it answers from its cache), or every login waits for it, even on a host not joined.
# (Wants= alone orders nothing: it only has the network brought up.)
if grep -Eq '^(After|Requires|Requisite|BindsTo)=.*network-online\.target' \
    "$here/packaging/systemd/jitd.service"; then
    fail "jitd.service waits for network-online.target, and so would every login"
fi
unit_has "$here/packaging/systemd/jit-server.service" User=jit-server Group=jit-server \
    ReadWritePaths=/var/lib/jit-server

step "lintian (errors and warnings fail unless overridden with a reason)"
# TMPDIR: lintian leaves its mldbm-elf-* index files behind in the temporary directory.
if TMPDIR=$work lintian --fail-on error,warning --display-level '>=info' "$host_deb" "$server_deb" \
    > "$work/lintian.out" 2>&1; then
    cat "$work/lintian.out"
else
    cat "$work/lintian.out"
    fail "lintian: an error, or a warning without an override (packaging/deb/*.lintian-overrides)"
fi
echo "overridden (packaging/deb/*.lintian-overrides):"
grep -hv '^#' "$here"/packaging/deb/*.lintian-overrides

step "contents of the .rpm files (rpm -qlp)"
rpm -qlp "$host_rpm" | sort > "$work/host-rpm.list"
rpm -qlp "$server_rpm" | sort > "$work/server-rpm.list"
for p in /usr/sbin/jitd /usr/bin/jitctl /usr/lib64/security/pam_jit.so /usr/lib64/libnss_jit.so.2 \
    /usr/lib/systemd/system/jitd.service /usr/share/jit/sshd_config.d/jit.conf /etc/jit/jitd.toml \
    /usr/share/man/man8/jitd.8.gz /usr/share/man/man8/pam_jit.8.gz /usr/share/man/man8/nss_jit.8.gz \
    /usr/share/man/man1/jitctl.1.gz /usr/share/man/man5/jitd.toml.5.gz \
    /usr/share/doc/jit-host/examples/pam.d/sshd \
    $(completions /usr/share/zsh/site-functions jitd jitctl); do
    grep -qx "$p" "$work/host-rpm.list" || fail "jit-host.rpm lacks $p"
done
for p in /usr/sbin/jit-server /usr/lib/systemd/system/jit-server.service /etc/jit/server.toml \
    /usr/lib/sysusers.d/jit-server.conf /usr/share/man/man8/jit-server.8.gz \
    /usr/share/man/man5/server.toml.5.gz \
    $(completions /usr/share/zsh/site-functions jit-server); do
    grep -qx "$p" "$work/server-rpm.list" || fail "jit-server.rpm lacks $p"
done
# rpmlint's own check of this is broken (see packaging/rpm/rpmlint.toml).
each_binary_has_its_man_page jit-host.rpm "$work/host-rpm.list"
each_binary_has_its_man_page jit-server.rpm "$work/server-rpm.list"
rpm -qp --configfiles "$host_rpm" | grep -qx /etc/jit/jitd.toml || fail "jitd.toml is no %config"
rpm -qp --configfiles "$server_rpm" | grep -qx /etc/jit/server.toml || fail "server.toml is no %config"
cat "$work/host-rpm.list" "$work/server-rpm.list"

step "glibc: the binaries need no newer symbol than the RPM's documented requirement"
rpm_glibc=$(rpm -qp --requires "$host_rpm" | sed -n 's/^glibc >= \([0-9.]*\)$/\1/p')
[ -n "$rpm_glibc" ] || fail "jit-host.rpm has no 'glibc >= X' requirement"
mkdir "$work/rpmroot"
# (rpm2cpio exits 1 when its output is a file, even after writing it all: use a pipe.)
for r in "$host_rpm" "$server_rpm"; do
    rpm2cpio "$r" | (cd "$work/rpmroot" && cpio -idm --quiet)
done
needed=$(for f in usr/sbin/jitd usr/bin/jitctl usr/sbin/jit-server usr/lib64/security/pam_jit.so \
    usr/lib64/libnss_jit.so.2; do
    objdump -T "$work/rpmroot/$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//'
done | sort -uV | tail -n1)
echo "newest glibc symbol version used: $needed; the RPMs require glibc >= $rpm_glibc"
[ "$(printf '%s\n%s\n' "$needed" "$rpm_glibc" | sort -V | tail -n1)" = "$rpm_glibc" ] \
    || fail "the binaries need glibc $needed, but the RPMs promise $rpm_glibc: update the requirement and docs/packaging.md"
rpm -qp --requires "$host_rpm"

step "rpmlint (errors fail)"
rpmlint -c "$here/packaging/rpm/rpmlint.toml" "$host_rpm" "$server_rpm"

# ------------------------------------------------------------------------------------------
step "the cached Debian 12 root"
key=$(printf '%s %s %s' "$suite" "$include" "$mirror" | sha256sum | cut -c1-12)
pristine="$cache/$suite-minbase-$key"
if [ ! -f "$pristine/.complete" ]; then
    echo "building $pristine (once; later runs reuse it)"
    mkdir -p "$cache"
    # Roots built from another package list or mirror are stale.
    for old in "$cache/$suite-minbase-"*; do
        [ -d "$old" ] && rm -rf --one-file-system "$old"
    done
    debootstrap --variant=minbase --include="$include" "$suite" "$pristine.tmp" "$mirror" \
        > "$cache/debootstrap.log" 2>&1 || { tail -n 30 "$cache/debootstrap.log"; fail "debootstrap failed"; }
    rm -rf "$pristine.tmp/var/cache/apt/archives/"*.deb "$pristine.tmp/var/lib/apt/lists/"*_Packages
    touch "$pristine.tmp/.complete"
    mv "$pristine.tmp" "$pristine"
fi
root=$(mktemp -d "$cache/run.XXXXXX")
cp -a "$pristine/." "$root/"
rm -f "$root/.complete"

# Private /proc, /dev (a few device nodes bound from the host) and /run for the chroot.
mount -t proc proc "$root/proc"; mounts="$root/proc $mounts"
mount -t tmpfs -o mode=0755,nosuid devtmp "$root/dev"; mounts="$root/dev $mounts"
for d in null zero full random urandom tty; do
    : > "$root/dev/$d"
    mount --bind "/dev/$d" "$root/dev/$d"; mounts="$root/dev/$d $mounts"
done
mount -t tmpfs -o mode=0755,nosuid,nodev runtmp "$root/run"; mounts="$root/run $mounts"
mkdir -p "$root/run/lock"

# Runs a command inside the root with a clean environment.
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        chroot "$root" "$@"
}
# apt inside the root. It would log dpkg's output to term.log through a pseudo-terminal, which
# the root's /dev has not got ("Can not write log (Is /dev/pts mounted?)"): not needed here.
apt_get() { in_root apt-get -o Dpkg::Use-Pty=0 "$@"; }
# stat inside the root, so that owners are the root's users, not the host's.
rstat() { in_root stat -c "$1" "$2"; }

# A local person with a password: her logins must not change while jit is installed.
in_root useradd -m -s /bin/bash carol
echo 'carol:carol-password' | in_root chpasswd

snapshot() {  # snapshot DIR: nsswitch.conf and pam.d byte for byte, and a listing of all /etc
    mkdir -p "$1"
    cp -a "$root/etc/nsswitch.conf" "$root/etc/pam.d" "$1/"
    (cd "$root/etc" && find . -xdev -printf '%y %m %u:%g %p %l\n' | LC_ALL=C sort > "$1/etc.list")
    (cd "$root/etc" && find . -xdev -type f -exec sha256sum {} + | LC_ALL=C sort -k2 > "$1/etc.sums")
}
same_config() {  # same_config DIR WHEN: nsswitch.conf and /etc/pam.d as in DIR, byte for byte
    cmp "$1/nsswitch.conf" "$root/etc/nsswitch.conf" || fail "$2: /etc/nsswitch.conf differs"
    diff -r "$1/pam.d" "$root/etc/pam.d" || fail "$2: /etc/pam.d differs"
    echo "$2: /etc/nsswitch.conf and /etc/pam.d are byte-identical to the snapshot"
}

pam() {  # pam USER INPUT: pamtester through the root's own stacks (service `other`)
    printf '%s\n' "$2" | in_root pamtester -I rhost=192.0.2.10 jit-pkgtest "$1" \
        authenticate acct_mgmt open_session close_session > "$work/pam.out" 2>&1
}
behaviour() {  # what a host shows without jit: one line per case, exit codes only
    r() { if "$@" >/dev/null 2>&1; then echo 0; else echo "$?"; fi; }
    echo "getent passwd carol: $(r in_root getent passwd carol)"
    echo "getent passwd admin: $(r in_root getent passwd admin)"
    echo "getent group admin: $(r in_root getent group admin)"
    echo "getent shadow admin: $(r in_root getent shadow admin)"
    echo "carol, right password: $(r pam carol carol-password)"
    echo "carol, wrong password: $(r pam carol wrong)"
    echo "admin: $(r pam admin 123456)"
    echo "root: $(r pam root 123456)"
}

step "before the install: snapshot and behaviour"
# The admin named jit on the shadow line already (tab-separated): that one is theirs, and the
# install, remove and purge leave it exactly as it is.
sed -i "s/^shadow:.*/&${tab}jit/" "$root/etc/nsswitch.conf"
grep "^shadow:" "$root/etc/nsswitch.conf"
snapshot "$work/before"
behaviour | tee "$work/behaviour.before"
grep -qx 'carol, right password: 0' "$work/behaviour.before" || fail "carol cannot log in before the install"

step "install jit-host and jit-server"
cp "$host_deb" "$server_deb" "$root/tmp/"
in_root dpkg -i "/tmp/$(basename "$host_deb")" "/tmp/$(basename "$server_deb")" > "$work/install.out" 2>&1 \
    || { cat "$work/install.out"; fail "dpkg -i"; }
cat "$work/install.out"
if grep -q WARNING "$work/install.out"; then fail "a warning on a plain install"; fi
for db in passwd group; do
    grep -Eq "^$db:[[:space:]]+files jit$" "$root/etc/nsswitch.conf" \
        || fail "nsswitch.conf: no 'files jit' on the $db line: $(grep "^$db:" "$root/etc/nsswitch.conf")"
done
[ "$(grep "^shadow:" "$root/etc/nsswitch.conf")" = "$(grep "^shadow:" "$work/before/nsswitch.conf")" ] \
    || fail "the shadow line, which named jit already, was changed: $(grep "^shadow:" "$root/etc/nsswitch.conf")"
[ "$(cat "$root/var/lib/jitd/.nsswitch-added")" = "$(printf 'passwd\ngroup')" ] \
    || fail "recorded as edited: $(cat "$root/var/lib/jitd/.nsswitch-added")"
grep -q '^gshadow:[[:space:]]*files$' "$root/etc/nsswitch.conf" || fail "gshadow line changed"
for s in auth account session; do
    grep -q 'pam_jit\.so' "$root/etc/pam.d/common-$s" || fail "common-$s does not call pam_jit.so"
done
[ "$(rstat '%a %U' /var/lib/jitd)" = "755 root" ] || fail "/var/lib/jitd: $(rstat '%a %U' /var/lib/jitd)"
[ "$(rstat '%a %U %G' /var/lib/jit-server)" = "700 jit-server jit-server" ] \
    || fail "/var/lib/jit-server: $(rstat '%a %U %G' /var/lib/jit-server)"
in_root getent passwd jit-server | grep -q ':/var/lib/jit-server:/usr/sbin/nologin$' \
    || fail "no jit-server system user"
[ -L "$root/etc/systemd/system/multi-user.target.wants/jitd.service" ] || fail "jitd.service is not enabled"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/jit-server.service" ] \
    || fail "jit-server.service must wait for init before it is enabled"
in_root jitd check-config | tee "$work/check-config.out"
grep -q 'not usable yet' "$work/check-config.out" || fail "jitd check-config should say the host has not joined"

step "shell completions: the installed bash completions work (in bash, inside the root)"
# Sourced as bash-completion would load them; `complete -p` names the function, which is then
# called as bash calls it for the words typed so far.
bash_completes() {  # bash_completes EXPECTED WORD...: bash offers EXPECTED for the last WORD
    expected=$1; shift
    # shellcheck disable=SC2016 # expanded by the bash inside the root
    offered=$(in_root bash --norc --noprofile -c '
        . "/usr/share/bash-completion/completions/$1"
        spec=$(complete -p "$1") || exit 1
        fn=$(printf "%s\n" "$spec" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' bash "$@") || fail "bash completion of $*: $offered"
    printf '%s\n' "$offered" | sed 's/ *$//' | grep -qx -- "$expected" \
        || fail "bash completes '$*' with '$(echo "$offered" | tr '\n' ' ')', not $expected"
    echo "ok: $* -> $expected"
}
bash_completes reserve jitctl res
bash_completes --for jitctl reserve admin --fo
bash_completes check-config jitd check
bash_completes init jit-server in

step "installed again (configure with the same version): nothing changes"
cp "$root/etc/nsswitch.conf" "$work/nsswitch.installed"
in_root dpkg -i "/tmp/$(basename "$host_deb")"
cmp "$work/nsswitch.installed" "$root/etc/nsswitch.conf" || fail "a second configure changed nsswitch.conf"

step "installed, not joined: the host behaves exactly as before"
behaviour | tee "$work/behaviour.unjoined"
diff "$work/behaviour.before" "$work/behaviour.unjoined" || fail "an unjoined host behaves differently"

step "the packaged jit-server, as its own user"
uid=$(in_root id -u jit-server)
gid=$(in_root id -g jit-server)
as_server() { env -i PATH=/usr/sbin:/usr/bin HOME=/var/lib/jit-server chroot --userspec="$uid:$gid" "$root" "$@"; }
as_server jit-server init --json > "$work/init.json"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(json "['admin_token']" < "$work/init.json")
fingerprint=$(json "['ca_fingerprint']" < "$work/init.json")
[ "$(rstat '%U' /var/lib/jit-server/jit.db)" = jit-server ] || fail "jit.db is not jit-server's"
# Started as a plain command, not through as_server: `$!` must be the server itself (env and
# chroot exec it), so that killing it stops the server and not a subshell around it.
env -i PATH=/usr/sbin:/usr/bin HOME=/var/lib/jit-server chroot --userspec="$uid:$gid" "$root" \
    jit-server run --listen 127.0.0.1:0 > "$work/server.out" 2> "$work/server.log" &
pids="$pids $!"
for _ in $(seq 100); do grep -q '^listening on ' "$work/server.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { cat "$work/server.log"; fail "jit-server did not start"; }
echo "jit-server: $url"

admin() { in_root env JITCTL_CONFIG=/root/jit-admin jitctl "$@"; }
alice() { in_root env JITCTL_CONFIG=/root/jit-alice jitctl "$@"; }
admin login --server "$url" --ca-fingerprint "$fingerprint" --token "$token"
code=$(admin --json person add alice | json "['enrollment_code']")
admin group add ops
admin group add-member ops alice
admin account add admin --uid 60001 --gid 60001 --home /home/admin --shell /bin/bash \
    --group ops --ttl 5m --max-ttl 30m --hosts 'web*'
join=$(admin --json host add web01 --label web | json "['join_token']")
mkfifo "$work/enroll.in"
alice --json enroll "$code" --server "$url" --ca-fingerprint "$fingerprint" \
    < "$work/enroll.in" > "$work/enroll.out" &
enroll=$!
exec 3> "$work/enroll.in"
for _ in $(seq 100); do [ -s "$work/enroll.out" ] && break; sleep 0.1; done
uri=$(head -n1 "$work/enroll.out" | json "['otpauth_uri']")
python3 "$here/scripts/totp.py" "$uri" >&3
exec 3>&-
wait "$enroll" || fail "enrollment failed: $(cat "$work/enroll.out")"

step "jitd join, then jitd run (by hand: no systemd in a chroot)"
in_root env JITD_JOIN_TOKEN="$join" jitd join
[ "$(rstat '%a %U' /etc/jit/host.key)" = "600 root" ] || fail "host.key is not 0600 root"
env -i PATH=/usr/sbin:/usr/bin JITD_LOG=info chroot "$root" /usr/sbin/jitd run 2> "$work/jitd.log" &
pids="$pids $!"
for _ in $(seq 100); do [ -S "$root/run/jitd/pam.sock" ] && break; sleep 0.1; done
[ -S "$root/run/jitd/pam.sock" ] || { cat "$work/jitd.log"; fail "jitd did not listen"; }

step "joined: admin resolves through nss_jit, and logs in with alice's code through the stacks"
in_root getent passwd admin | tee "$work/getent.out"
grep -qx 'admin:x:60001:60001:[^:]*:/home/admin:/bin/bash' "$work/getent.out" || fail "getent passwd admin"
in_root getent group admin | grep -q '^admin:x:60001:' || fail "getent group admin"
in_root id admin
if pam admin 000000; then fail "admin logged in without a reservation"; fi
cat "$work/pam.out"
alice reserve admin --host web01 --for 5m --reason "package test"
pam admin "$(python3 "$here/scripts/totp.py" "$uri" 1)" || { cat "$work/pam.out" "$work/jitd.log"; fail "alice's login to admin"; }
cat "$work/pam.out"
grep -q 'Verification code' "$work/pam.out" || fail "no verification prompt"
if pam admin "$(python3 "$here/scripts/totp.py" "$uri" 1)"; then fail "a reservation was used twice"; fi
pam carol carol-password || fail "carol's own login changed while joined"

step "stop jitd and jit-server"
for p in $pids; do kill "$p"; wait "$p" || true; done
pids=""

step "upgrade (the same packages repacked as a newer version): state and choices kept"
for d in "$host_deb" "$server_deb"; do
    n=$(basename "$d" .deb)
    dpkg-deb -R "$d" "$work/$n"
    sed -i 's/^Version: \(.*\)$/Version: \1+pkgtest1/' "$work/$n/DEBIAN/control"
    dpkg-deb -b "$work/$n" "$root/tmp/$n+pkgtest1.deb" >/dev/null
done
# An admin's choices before the upgrade: a local setting in the conffile, and no jit on the
# group line.
echo 'refresh_interval = "5s"' >> "$root/etc/jit/jitd.toml"
sed -i 's/^\(group:.*\) jit$/\1/' "$root/etc/nsswitch.conf"
snapshot "$work/before-upgrade"
in_root dpkg -i "/tmp/$(basename "$host_deb" .deb)+pkgtest1.deb" "/tmp/$(basename "$server_deb" .deb)+pkgtest1.deb"
# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
in_root dpkg-query -W -f '${Version}\n' jit-host | grep -q '+pkgtest1$' || fail "not upgraded"
same_config "$work/before-upgrade" "after upgrade"
grep -q '^refresh_interval = "5s"$' "$root/etc/jit/jitd.toml" || fail "the upgrade lost a conffile setting"
for f in /etc/jit/host.key /etc/jit/ca.pem /var/lib/jitd/nss.cache /var/lib/jit-server/jit.db; do
    [ -f "$root$f" ] || fail "the upgrade lost $f"
done
[ -L "$root/etc/systemd/system/multi-user.target.wants/jitd.service" ] || fail "upgrade disabled jitd"
# Back to the packaged line, so that remove and purge are compared with the first snapshot.
sed -i 's/^\(group:[[:space:]]*files\)$/\1 jit/' "$root/etc/nsswitch.conf"

step "systemd-analyze verify and security (the installed units, inside the root)"
# systemd-analyze stamps /run/systemd/systemd-units-load when it loads units, even with --root:
# it runs with a /run of its own, so the machine's is not touched.
analyze() { unshare -m sh -ec 'mount -t tmpfs -o mode=0755 tmpfs /run; exec systemd-analyze "$@"' sh "$@"; }
# verify exits 0 on unknown keys and bad values ("…, ignoring"): any output is a failure.
if ! analyze verify --man=no --generators=no --root="$root" \
    /usr/lib/systemd/system/jitd.service /usr/lib/systemd/system/jit-server.service \
    > "$work/verify.out" 2>&1 || [ -s "$work/verify.out" ]; then
    cat "$work/verify.out"
    fail "systemd-analyze verify"
fi
echo "systemd-analyze verify: no complaint"
# The exposure score (0 safest, 10 unsafe): both services must stay at "OK" (below 2.5).
for unit in jitd.service jit-server.service; do
    analyze security --offline=true --threshold=25 --root="$root" "$unit" \
        > "$work/security.out" 2>&1 || { cat "$work/security.out"; fail "$unit is exposed"; }
    grep 'Overall exposure level' "$work/security.out"
done

step "remove refused while a PAM file still names pam_jit.so (its lines say default=die)"
# Once pam_jit.so is gone, Linux-PAM fails such a line and default=die refuses every login
# through that stack. So prerm refuses, names each file and says what to do; dpkg's abort path
# (postinst abort-remove) leaves the package installed and the stacks as they were.
module="$root/usr/lib/$arch/security/pam_jit.so"
pam_jit_line='auth       [success=done ignore=ignore default=die]                    pam_jit.so'
cp -a "$root/etc/pam.d" "$work/pam.d.installed"
refused() {  # refused WHAT FILE...: `apt-get remove jit-host` fails and names each FILE
    what=$1; shift
    if apt_get remove -y jit-host > "$work/remove.out" 2>&1; then
        cat "$work/remove.out"; fail "$what: jit-host was removed"
    fi
    cat "$work/remove.out"
    for f in "$@"; do
        grep -q "^jit-host: *$f\$" "$work/remove.out" || fail "$what: the refusal does not name $f"
    done
    n=$(grep -c '^jit-host: *\(/etc/pam\.d/[^ ]*\|/etc/pam\.conf\)$' "$work/remove.out")
    [ "$n" = "$#" ] || fail "$what: the refusal names $n files, expected $*"
    grep -qF 'pam-auth-update --remove jit' "$work/remove.out" || fail "$what: the refusal does not say what to do"
    # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
    in_root dpkg-query -W -f '${Status}\n' jit-host | grep -q ' ok installed$' \
        || fail "$what: jit-host is not installed any more"
    [ -f "$module" ] || fail "$what: pam_jit.so is gone"
    # dpkg stops at the error before it runs the triggers this removal activated (ldconfig):
    # any later dpkg run does; then nothing must be left half-done.
    in_root dpkg --configure --pending
    [ -z "$(in_root dpkg --audit)" ] || fail "$what: dpkg --audit: $(in_root dpkg --audit)"
    pam carol carol-password || { cat "$work/pam.out"; fail "$what: carol cannot log in"; }
    if pam carol wrong; then fail "$what: carol logs in with a wrong password"; fi
    echo "$what: refused, still installed, logins work"
}
# A hand-written stack (a line from the examples) in a file the profile does not manage.
echo "$pam_jit_line" >> "$root/etc/pam.d/login"
refused "a pam_jit line in /etc/pam.d/login" /etc/pam.d/login
printf 'carol-password\n' | in_root pamtester login carol authenticate acct_mgmt \
    || fail "carol cannot log in through /etc/pam.d/login, which names pam_jit.so"
grep -q 'pam_jit\.so' "$root/etc/pam.d/common-auth" || fail "the abort path did not put the profile back"
cp "$work/pam.d.installed/login" "$root/etc/pam.d/login"
diff -r "$work/pam.d.installed" "$root/etc/pam.d" || fail "/etc/pam.d differs after a refused removal"
# Local modifications to common-*: pam-auth-update --remove says "not updating" and exits 0.
sed -i '/^# here are the per-package modules/a # a local change' "$root/etc/pam.d/common-auth"
refused "common-* modified locally" /etc/pam.d/common-account /etc/pam.d/common-auth \
    /etc/pam.d/common-session
grep -q 'Local modifications' "$work/remove.out" || fail "pam-auth-update did not report local modifications"
cp "$work/pam.d.installed/common-auth" "$root/etc/pam.d/common-auth"
diff -r "$work/pam.d.installed" "$root/etc/pam.d" || fail "/etc/pam.d differs after a refused removal"
# The profile disabled on purpose, stacks written by hand: the abort path keeps it disabled.
in_root pam-auth-update --disable jit
if grep -q 'pam_jit\.so' "$root/etc/pam.d/common-auth"; then fail "pam-auth-update --disable jit"; fi
echo "$pam_jit_line" >> "$root/etc/pam.d/login"
refused "profile disabled, a pam_jit line in /etc/pam.d/login" /etc/pam.d/login
if grep -q 'pam_jit\.so' "$root/etc/pam.d/common-auth"; then
    fail "the abort path enabled the profile the admin had disabled"
fi
cp "$work/pam.d.installed/login" "$root/etc/pam.d/login"
in_root pam-auth-update --enable jit
diff -r "$work/pam.d.installed" "$root/etc/pam.d" || fail "/etc/pam.d differs after a refused removal"

step "remove: configuration restored, state kept"
apt_get remove -y jit-host jit-server
same_config "$work/before" "after remove"
[ -d "$root/var/lib/jitd" ] || fail "remove deleted /var/lib/jitd"
[ -f "$root/etc/jit/host.key" ] || fail "remove deleted the host key"
[ ! -e "$root/run/jitd" ] || fail "remove left /run/jitd"
behaviour > "$work/behaviour.removed"
diff "$work/behaviour.before" "$work/behaviour.removed" || fail "a removed jit-host still changes the host"

step "reinstall after remove: configured again"
in_root dpkg -i "/tmp/$(basename "$host_deb")" "/tmp/$(basename "$server_deb")"
grep -Eq '^passwd:[[:space:]]+files jit$' "$root/etc/nsswitch.conf" || fail "reinstall: nsswitch.conf"
grep -q 'pam_jit\.so' "$root/etc/pam.d/common-auth" || fail "reinstall: common-auth"

step "purge: configuration restored, state deleted"
in_root dpkg --purge jit-host jit-server
same_config "$work/before" "after purge"
for p in /var/lib/jitd /var/lib/jit-server /etc/jit /run/jitd \
    /etc/systemd/system/multi-user.target.wants/jitd.service; do
    [ ! -e "$root$p" ] || fail "purge left $p"
done
snapshot "$work/after"
# The jit-server system user stays after a purge, as Debian keeps every system user.
for f in etc.list etc.sums; do
    grep -Ev '\./(passwd|group|shadow|gshadow)-?( |$)' "$work/before/$f" > "$work/before/$f.cmp"
    grep -Ev '\./(passwd|group|shadow|gshadow)-?( |$)' "$work/after/$f" > "$work/after/$f.cmp"
done
diff "$work/before/etc.list.cmp" "$work/after/etc.list.cmp" || fail "purge left /etc different"
diff "$work/before/etc.sums.cmp" "$work/after/etc.sums.cmp" || fail "purge left /etc different"
echo "after purge: all of /etc is as before (except the kept jit-server user)"

step "install while /etc/pam.d/common-* have local modifications: a clear warning"
# pam-auth-update leaves the files alone then (and exits 0): pam_jit guards nothing, and root's
# local password still works. postinst must say so, and what to do.
sed -i '/^# here are the per-package modules/a # a local change' "$root/etc/pam.d/common-auth"
cp -a "$root/etc/pam.d" "$work/pam.d.modified"
in_root dpkg -i "/tmp/$(basename "$host_deb")" > "$work/install.out" 2>&1 \
    || { cat "$work/install.out"; fail "dpkg -i"; }
cat "$work/install.out"
grep -q 'WARNING: pam_jit is NOT in the PAM stacks' "$work/install.out" || fail "no warning"
grep -qF 'pam-auth-update --enable jit --force' "$work/install.out" || fail "the warning does not say what to do"
diff -r "$work/pam.d.modified" "$root/etc/pam.d" || fail "/etc/pam.d changed"
in_root dpkg --purge jit-host
cp "$work/before/pam.d/common-auth" "$root/etc/pam.d/common-auth"
same_config "$work/before" "after install and purge with local modifications"

step "the RPM scriptlets of jit-host.rpm, run in the root"
for s in POSTIN PREUN POSTUN; do
    rpm -qp --qf "%{$s}\n" "$host_rpm" > "$root/tmp/rpm-$s.sh"
done
rpm_script() { in_root sh "/tmp/rpm-$1.sh" "$2"; }
rpm_script POSTIN 1
for db in passwd group; do
    grep -Eq "^$db:[[:space:]]+files jit$" "$root/etc/nsswitch.conf" || fail "rpm %post: the $db line"
done
[ "$(grep "^shadow:" "$root/etc/nsswitch.conf")" = "$(grep "^shadow:" "$work/before/nsswitch.conf")" ] \
    || fail "rpm %post changed the shadow line, which named jit already"
cp "$root/etc/nsswitch.conf" "$work/nsswitch.installed"
rpm_script POSTIN 2
cmp "$work/nsswitch.installed" "$root/etc/nsswitch.conf" || fail "rpm %post on upgrade changed nsswitch.conf"
echo "$pam_jit_line" >> "$root/etc/pam.d/login"
if rpm_script PREUN 0 > "$work/preun.out" 2>&1; then cat "$work/preun.out"; fail "rpm %preun did not refuse"; fi
cat "$work/preun.out"
grep -q '^jit-host: */etc/pam.d/login$' "$work/preun.out" || fail "rpm %preun does not name /etc/pam.d/login"
grep -qF 'authselect apply-changes' "$work/preun.out" || fail "rpm %preun does not say what to do"
rpm_script PREUN 1 || fail "rpm %preun refused an upgrade"
cp "$work/before/pam.d/login" "$root/etc/pam.d/login"
rpm_script PREUN 0 || fail "rpm %preun refused without a pam_jit line"
rpm_script POSTUN 0
same_config "$work/before" "rpm %post, %preun, %postun"
# authselect manages nsswitch.conf (a stand-in that says so): neither %post nor %postun edits
# it, both say what to do in the profile instead.
printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/authselect"
chmod 755 "$root/usr/bin/authselect"
sed -i 's/^passwd:.*/& jit/' "$root/etc/nsswitch.conf"   # as the admin's profile has it
cp "$root/etc/nsswitch.conf" "$work/nsswitch.authselect"
rpm_script POSTIN 1 > "$work/post.out" 2>&1
cat "$work/post.out"
grep -q 'authselect manages' "$work/post.out" || fail "rpm %post: no word about authselect"
rpm_script POSTUN 0 > "$work/postun.out" 2>&1
cat "$work/postun.out"
grep -q 'authselect disable-feature' "$work/postun.out" || fail "rpm %postun: no word about authselect"
cmp "$work/nsswitch.authselect" "$root/etc/nsswitch.conf" || fail "rpm scriptlets edited an authselect nsswitch.conf"
rm -f "$root/usr/bin/authselect"

printf '\npackages OK\n'
