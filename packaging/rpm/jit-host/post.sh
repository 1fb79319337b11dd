# jit-host %post ($1: 1 on install, 2 on upgrade). Creates /var/lib/jitd and, on a first
# install, adds `jit` to the passwd, group and shadow lines of /etc/nsswitch.conf after `files`
# (unless authselect manages that file: then it says what to do), and records which lines it
# changed, so that %postun takes jit out of exactly those. PAM is not changed: see
# /usr/share/doc/jit-host or docs/packaging.md (authselect). jitd starts only once the host has
# joined (ConditionPathExists=/etc/jit/host.key in the unit).
NSSWITCH=/etc/nsswitch.conf
NSS_STATE=/var/lib/jitd/.nsswitch-added

# The same function as in the .deb's postinst (the package tests check that).
nss_add() {
    if [ ! -e "$NSSWITCH" ]; then
        echo "jit-host: $NSSWITCH does not exist; add 'jit' to its passwd, group and shadow lines by hand." >&2
        return 0
    fi
    # A line that names jit already (the admin's, or ours) is left alone.
    nss_has_jit='[:[:space:]]jit([[:space:]]|\[|$)'
    for nss_db in passwd group shadow; do
        if ! grep -E "^$nss_db:" "$NSSWITCH" | grep -Evq "$nss_has_jit"; then
            continue
        fi
        # " jit" right after the first `files` (or `compat`) and the action in brackets that
        # follows it, if any (so that `files [NOTFOUND=return]` keeps its action); else at the
        # end. Exactly " jit" is inserted, so postrm can take exactly that out again.
        sed -E -i --follow-symlinks \
            -e "/^$nss_db:/ {" \
            -e "/$nss_has_jit/b" \
            -e 's/([:[:space:]])(files|compat)(([[:space:]]*\[[^]]*\])*)([[:space:]]|$)/\1\2\3 jit\5/' \
            -e 't' \
            -e 's/$/ jit/' \
            -e '}' \
            "$NSSWITCH"
        if ! grep -qx "$nss_db" "$NSS_STATE" 2>/dev/null; then
            echo "$nss_db" >> "$NSS_STATE"
        fi
        if grep -Eq "^$nss_db:.*(files|compat)[[:space:]]*\[[^]]*NOTFOUND[[:space:]]*=[[:space:]]*return" "$NSSWITCH"; then
            echo "jit-host: note: the $nss_db line of $NSSWITCH stops after 'files' when it does not find a name ([NOTFOUND=return]), so jit is not asked about shared accounts that exist only in jit; move 'jit' before that action if they should resolve." >&2
        fi
    done
}

/sbin/ldconfig
install -d -m 0755 /var/lib/jitd
if [ "$1" -eq 1 ]; then
    if command -v authselect >/dev/null 2>&1 && authselect current >/dev/null 2>&1; then
        echo "jit-host: authselect manages $NSSWITCH: add 'jit' after 'files' on the passwd, group and shadow lines of your authselect profile (see jitd(8))." >&2
    else
        nss_add
    fi
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl preset jitd.service >/dev/null 2>&1 || :
    fi
fi
exit 0
