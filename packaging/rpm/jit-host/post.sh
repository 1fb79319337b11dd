# jit-host %post ($1: 1 on install, 2 on upgrade). Creates /var/lib/jitd and, on a first
# install, adds `jit` to the passwd, group and shadow lines of /etc/nsswitch.conf after `files`
# (unless authselect manages that file: then it says what to do). PAM is not changed: see
# /usr/share/doc/jit-host or docs/packaging.md (authselect). jitd starts only once the host has
# joined (ConditionPathExists=/etc/jit/host.key in the unit).
NSSWITCH=/etc/nsswitch.conf
/sbin/ldconfig
install -d -m 0755 /var/lib/jitd
if [ "$1" -eq 1 ]; then
    if command -v authselect >/dev/null 2>&1 && authselect current >/dev/null 2>&1; then
        echo "jit-host: authselect manages $NSSWITCH: add 'jit' after 'files' on the passwd, group and shadow lines of your authselect profile (see jitd(8))." >&2
    elif [ -e "$NSSWITCH" ]; then
        sed -E -i --follow-symlinks \
            -e '/^(passwd|group|shadow):/ {' \
            -e '/[[:space:]]jit([[:space:]]|$)/b' \
            -e 's/([[:space:]])(files|compat)([[:space:]]|$)/\1\2 jit\3/' \
            -e 't' \
            -e 's/$/ jit/' \
            -e '}' \
            "$NSSWITCH"
    fi
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl preset jitd.service >/dev/null 2>&1 || :
    fi
fi
exit 0
