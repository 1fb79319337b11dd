# jit-host %postun ($1: 0 on erase, 1 on upgrade): on erase, takes `jit` out of the lines of
# /etc/nsswitch.conf that %post added it to (unless authselect manages that file: then it says
# what to do) and deletes /run/jitd (/var/lib/jitd and /etc/jit/host.key stay, as RPM leaves
# data; delete them to forget the host). On upgrade, restarts jitd if it runs.
NSSWITCH=/etc/nsswitch.conf
NSS_STATE=/var/lib/jitd/.nsswitch-added

# The same function as in the .deb's postrm (the package tests check that).
# shellcheck disable=SC2034 # nss_removed: only the .deb's postrm needs it
nss_remove() {
    # Only the lines postinst added " jit" to (NSS_STATE), and on each only that one word: a jit
    # the admin had before the install is not ours, and stays. Sets nss_removed=yes when it took
    # jit out of a line.
    nss_removed=
    [ -e "$NSS_STATE" ] || return 0
    if [ -e "$NSSWITCH" ]; then
        while IFS= read -r nss_db; do
            case "$nss_db" in passwd|group|shadow) ;; *) continue ;; esac
            # postinst inserted " jit"; an admin may since have put a tab before it.
            if grep -Eq "^$nss_db:.*[[:space:]]jit([[:space:]]|\[|\$)" "$NSSWITCH"; then
                sed -E -i --follow-symlinks \
                    -e "/^$nss_db:/ s/[[:space:]]jit([[:space:]]|\[|\$)/\1/" "$NSSWITCH"
                nss_removed=yes
            fi
        done < "$NSS_STATE"
    fi
    rm -f "$NSS_STATE"
}

/sbin/ldconfig
if [ "$1" -eq 0 ]; then
    if command -v authselect >/dev/null 2>&1 && authselect current >/dev/null 2>&1; then
        # authselect owns the file: an edit here would be undone (and `authselect check` fail).
        rm -f "$NSS_STATE"
        if grep -Eq '^(passwd|group|shadow):.*[[:space:]]jit([[:space:]]|\[|$)' "$NSSWITCH" 2>/dev/null; then
            echo "jit-host: authselect manages $NSSWITCH, which still names jit: take 'jit' out of the passwd, group and shadow lines of your authselect profile (/etc/authselect/custom/PROFILE/nsswitch.conf; or \`authselect disable-feature\` if you made it a feature), then run \`authselect apply-changes\`." >&2
        fi
    else
        nss_remove
    fi
    rm -rf /run/jitd
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart jitd.service >/dev/null 2>&1 || :
    fi
fi
exit 0
