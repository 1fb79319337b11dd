# jit-server %pre: the system user and group jit-server (also described for systemd-sysusers
# in /usr/lib/sysusers.d/jit-server.conf).
if ! getent passwd jit-server >/dev/null; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        echo 'u jit-server - "jit central service" /var/lib/jit-server /usr/sbin/nologin' | systemd-sysusers -
    else
        getent group jit-server >/dev/null || groupadd -r jit-server
        useradd -r -g jit-server -d /var/lib/jit-server -M -s /usr/sbin/nologin \
            -c "jit central service" jit-server
    fi
fi
exit 0
