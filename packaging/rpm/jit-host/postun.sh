# jit-host %postun ($1: 0 on erase, 1 on upgrade): on erase, takes `jit` out of
# /etc/nsswitch.conf and deletes /run/jitd (/var/lib/jitd and /etc/jit/host.key stay, as RPM
# leaves data; delete them to forget the host). On upgrade, restarts jitd if it runs.
/sbin/ldconfig
if [ "$1" -eq 0 ]; then
    if [ -e /etc/nsswitch.conf ]; then
        sed -E -i --follow-symlinks \
            -e '/^(passwd|group|shadow):/ s/ jit([[:space:]]|$)/\1/' /etc/nsswitch.conf
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
