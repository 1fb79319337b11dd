# jit-server %preun ($1: 0 on erase, 1 on upgrade): stops and disables the service on erase.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now jit-server.service >/dev/null 2>&1 || :
fi
exit 0
