# jit-server %postun ($1: 0 on erase, 1 on upgrade): restarts the service after an upgrade if
# it runs. /var/lib/jit-server stays on erase (RPM leaves data): back it up, then delete it.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart jit-server.service >/dev/null 2>&1 || :
    fi
fi
exit 0
