//! The pam-auth-update profile (packaging/pam/pam-configs/jit) as pam-auth-update turns it into
//! common-* files: where pam_jit lands, and that services which act for an account without a
//! person logging in (cron running root's crontab, systemd's user manager…) keep working for a
//! shared account, while any other service refuses a shared account that skipped jit's auth.

use jit_tests::World;
use jit_tests::host::Host;
use jit_tests::sshd::system::share_root;
use jit_tests::sshd::{Pam, System};

/// The module lines of a generated common-* file (comments and blanks dropped).
fn lines(sys: &System, file: &str) -> Vec<String> {
    std::fs::read_to_string(sys.pam_d().join(file))
        .expect("common file")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn position(lines: &[String], module: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(module))
        .unwrap_or_else(|| panic!("no {module} in {lines:#?}"))
}

#[test]
fn pam_jit_comes_first_and_a_refusal_never_falls_through_to_a_password() {
    let w = World::new();
    let host = Host::start(&w);
    let sys = System::new(&host, Pam::Profile);
    let auth = lines(&sys, "common-auth");
    // First, jumping past pam_unix and pam_deny on success, dying on any refusal.
    assert_eq!(
        auth[0], "auth [success=2 ignore=ignore default=die] pam_jit.so",
        "{auth:#?}"
    );
    assert!(auth[1].contains("pam_unix.so"), "{auth:#?}");
    assert!(auth[2].contains("pam_deny.so"), "{auth:#?}");
    let account = lines(&sys, "common-account");
    assert!(
        position(&account, "pam_jit.so") < position(&account, "pam_unix.so"),
        "{account:#?}"
    );
    assert!(account[position(&account, "pam_jit.so")].contains("default=die"));
    let session = lines(&sys, "common-session");
    let jit = position(&session, "pam_jit.so");
    assert!(
        session[jit + 1].contains("pam_mkhomedir.so umask=0077"),
        "{session:#?}"
    );
    // Non-interactive sessions (cron, sudo) never ask jitd.
    let quiet = lines(&sys, "common-session-noninteractive");
    assert!(!quiet.iter().any(|l| l.contains("pam_jit")), "{quiet:#?}");
    // Passwords are pam_unix's business alone.
    let password = lines(&sys, "common-password");
    assert!(
        !password.iter().any(|l| l.contains("pam_jit")),
        "{password:#?}"
    );
}

#[test]
fn unattended_services_keep_working_for_a_shared_account() {
    let w = World::new();
    let host = Host::start(&w);
    share_root(&w, &host);
    let sys = System::new(&host, Pam::Profile);
    // Debian's /etc/pam.d/cron (package cron), and the same stack under a name the profile
    // does not know.
    let cron = "@include common-auth\n\
                session required pam_loginuid.so\n\
                session required pam_env.so\n\
                @include common-account\n\
                @include common-session-noninteractive\n\
                session required pam_limits.so\n";
    for service in ["cron", "some-daemon"] {
        std::fs::write(sys.pam_d().join(service), cron).expect("service file");
    }
    let ok = sys.pamtester(
        "cron",
        "root",
        &["acct_mgmt", "open_session", "close_session"],
    );
    assert!(
        ok.status.success(),
        "root's crontab must keep running: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = sys.pamtester("some-daemon", "root", &["acct_mgmt"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains("root is a shared account"), "{text}");
    // An ordinary user is untouched by either.
    let carol = sys.pamtester("some-daemon", "carol", &["acct_mgmt"]);
    assert!(carol.status.success(), "{:?}", carol);
}
