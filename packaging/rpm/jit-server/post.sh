# jit-server %post ($1: 1 on install, 2 on upgrade): creates /var/lib/jit-server (0700). The
# service is not started: initialize it first (runuser -u jit-server -- jit-server init), then
# systemctl enable --now jit-server.
if [ ! -d /var/lib/jit-server ]; then
    install -d -m 0700 -o jit-server -g jit-server /var/lib/jit-server
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
