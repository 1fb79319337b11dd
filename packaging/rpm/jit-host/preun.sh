# jit-host %preun ($1: 0 on erase, 1 on upgrade). On erase: refuses (a failing %preun stops the
# erase) while a file under /etc/pam.d still names pam_jit.so, because every pam_jit line says
# default=die and Linux-PAM fails a module it cannot load: once pam_jit.so is gone, every login
# through that stack would be refused, root's and sudo's included. Otherwise stops and disables
# jitd.

# The same function as in the .deb's prerm (the package tests check that).
pam_jit_files() {
    for pam_file in /etc/pam.conf /etc/pam.d/*; do
        [ -f "$pam_file" ] || continue
        if sed 's/#.*//' "$pam_file" | grep -q 'pam_jit\.so'; then
            printf '%s\n' "$pam_file"
        fi
    done
}

if [ "$1" -eq 0 ]; then
    left=$(pam_jit_files)
    if [ -n "$left" ]; then
        {
            echo
            echo "jit-host: NOT removing jit-host: these PAM files still use pam_jit.so:"
            printf '%s\n' "$left" | sed 's/^/jit-host:     /'
            echo "jit-host: Once the module is gone, every login through them would be refused"
            echo "jit-host: (default=die), root's and sudo's included. First take the pam_jit lines"
            echo "jit-host: out of them: with authselect, out of your custom profile"
            echo "jit-host: (/etc/authselect/custom/PROFILE/system-auth and password-auth), then"
            echo "jit-host: \`authselect apply-changes\` (or \`authselect select\` a profile without"
            echo "jit-host: pam_jit); hand-written files directly. Then remove jit-host again."
            echo
        } >&2
        exit 1
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now jitd.service >/dev/null 2>&1 || :
    fi
fi
exit 0
