//! What `jitd join`, `jitd check-config` and `jitd run` tell a person who runs jitd by hand with a
//! configuration of their own, tried as a new user would: every command they are told to run
//! carries that `--config`, and join's message is not preceded by log lines.

use jit_tests::World;
use jit_tests::host::Host;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn hints_repeat_the_config_the_person_gave() {
    let host = Host::unjoined();
    let config = host.config().display().to_string();
    let join = format!("jitd join --token TOKEN --config {config}");

    let out = host.jitd(&["check-config"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let last = stdout(&out).lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("not usable yet: ") && last.ends_with(&format!("run `{join}`")),
        "{last}"
    );

    let out = host.jitd(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("has not joined jit yet; run `{join}`")),
        "{}",
        stderr(&out)
    );

    // The join itself: no log line before its message, which ends with how to start this jitd
    // (the jitd.service unit would read /etc/jit/jitd.toml, not this file).
    let w = World::new();
    let out = host.jitd(&["join", "--token", &w.join_token]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stderr(&out), "", "join logged to stderr");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Joined web01 to https://"), "{text}");
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "Now start jitd (as root; it stays in the foreground): jitd run --config {config}"
            )
            .as_str()
        ),
        "{text}"
    );
    assert!(!text.contains("systemctl"), "{text}");

    let out = host.jitd(&["check-config"]);
    assert!(
        stdout(&out).contains("\njoined as web01 to https://"),
        "{}",
        stdout(&out)
    );

    // The CA the join wrote is lost: joining again, with this config, brings it back.
    let ca = host.config().with_file_name("etc-jit").join("ca.pem");
    std::fs::remove_file(&ca).expect("remove ca.pem");
    let out = host.jitd(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "cannot read the server's CA certificate {}: ",
            ca.display()
        )) && stderr(&out)
            .trim_end()
            .ends_with(&format!("run `{join}` again")),
        "{}",
        stderr(&out)
    );
}
