# jit-host %preun ($1: 0 on erase, 1 on upgrade): stops and disables jitd on erase.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl --no-reload disable --now jitd.service >/dev/null 2>&1 || :
fi
exit 0
