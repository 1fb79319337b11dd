//! The man pages and the packaged configuration files against the code they describe: every
//! key the daemons accept is documented and listed with its real default, every command and
//! subcommand has its section, and no placeholder is left.

use std::collections::BTreeSet;
use std::path::Path;

fn page(name: &str) -> String {
    jit_man::pages("2026-01-01")
        .expect("render")
        .into_iter()
        .find(|p| p.file == name)
        .unwrap_or_else(|| panic!("no page {name}"))
        .text
}

fn packaged(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Field names in a `{:#?}` rendering of a config struct (`name: value` lines), nested ones too.
fn fields(debug: &str) -> BTreeSet<String> {
    debug
        .lines()
        .filter_map(|l| l.trim_start().split_once(": ").map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

/// The packaged file with its settings uncommented: lines `#key = …` and `#[table]` (prose
/// comments are `# …`, with a space).
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Keys set in a TOML text, with their table (`services.deny_as_prompt`) and bare.
fn keys_in(text: &str) -> BTreeSet<String> {
    let value: toml::Table = text.parse().expect("toml");
    let mut out = BTreeSet::new();
    for (k, v) in &value {
        out.insert(k.clone());
        if let toml::Value::Table(t) = v {
            out.extend(t.keys().cloned());
        }
    }
    out
}

fn roff_name(key: &str) -> String {
    format!(".B {}", key.replace('-', "\\-"))
}

#[test]
fn every_page_renders_with_its_title_and_no_placeholder() {
    let pages = jit_man::pages("2026-01-01").expect("render");
    let names: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(
        names,
        [
            "jitd.8",
            "jit-server.8",
            "jitctl.1",
            "pam_jit.8",
            "nss_jit.8",
            "jitd.toml.5",
            "server.toml.5"
        ]
    );
    for p in &pages {
        let (stem, section) = p.file.rsplit_once('.').expect("section");
        let first = p
            .text
            .lines()
            .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
            .unwrap_or_default();
        assert!(
            first.starts_with(&format!(".TH {} {section} ", stem.to_uppercase())),
            "{}: first line {first:?}",
            p.file
        );
        assert!(
            first.contains("2026-01-01"),
            "{}: no date in {first:?}",
            p.file
        );
        assert!(
            first.contains(&format!("jit {}", jit_man::VERSION)),
            "{}: {first:?}",
            p.file
        );
        for placeholder in ["@VERSION@", "@DATE@"] {
            assert!(
                !p.text.contains(placeholder),
                "{}: {placeholder} is left",
                p.file
            );
        }
        for s in [
            "\n.SH NAME\n",
            "\n.SH SYNOPSIS\n",
            "\n.SH DESCRIPTION\n",
            "\n.SH \"SEE ALSO\"\n",
        ] {
            assert!(p.text.contains(s), "{}: no {s:?}", p.file);
        }
    }
}

/// Every subcommand (depth first) has a `.SS "prog sub …"` section with its synopsis.
fn assert_commands_documented(text: &str, cmd: &clap::Command, path: &str) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let p = format!("{path} {}", sub.get_name());
        let heading = format!(".SS \"{}\"", p.replace('-', "\\-"));
        assert!(text.contains(&heading), "no {heading} in the page");
        assert_commands_documented(text, sub, &p);
    }
}

#[test]
fn binary_pages_document_every_subcommand_and_option() {
    let jitd = page("jitd.8");
    assert_commands_documented(&jitd, &jitd::cli::command(), "jitd");
    for s in [
        "\\-\\-token",
        "\\-\\-force",
        "\\-\\-config",
        "JITD_JOIN_TOKEN",
        ".SH FILES",
        "EXIT STATUS",
    ] {
        assert!(jitd.contains(s), "jitd.8 lacks {s}");
    }
    let server = page("jit-server.8");
    assert_commands_documented(&server, &jit_server::cli::command(), "jit-server");
    for s in [
        "\\-\\-data",
        "\\-\\-listen",
        "\\-\\-revoke\\-others",
        "admin\\-token",
        "runuser",
    ] {
        assert!(server.contains(s), "jit-server.8 lacks {s}");
    }
    let jitctl = page("jitctl.1");
    assert_commands_documented(&jitctl, &jitctl::cli::command(), "jitctl");
    for s in [
        "\\-\\-host",
        "\\-\\-for",
        "\\-\\-reason",
        "EXIT STATUS",
        "JITCTL_CONFIG",
    ] {
        assert!(jitctl.contains(s), "jitctl.1 lacks {s}");
    }
    // Global options are described once, at the top, not under every command.
    let (top, commands) = jitctl.split_once(".SH COMMANDS").expect("COMMANDS");
    assert!(top.contains("\\fB\\-\\-json\\fR"));
    assert!(!commands.contains("\\fB\\-\\-json\\fR"), "{commands}");
    assert!(!commands.contains("\\fB\\-\\-help\\fR"), "{commands}");
}

#[test]
fn jitd_toml_page_and_packaged_file_cover_every_key_with_its_default() {
    let defaults = jitd::config::Config::default();
    let all = fields(&format!("{defaults:#?}"));
    assert!(
        all.contains("host_key") && all.contains("deny_as_prompt"),
        "{all:?}"
    );
    let man = page("jitd.toml.5");
    let file = packaged("jitd.toml");
    let settings = uncommented(&file);
    let listed = keys_in(&settings);
    for key in &all {
        assert!(
            man.contains(&roff_name(key))
                || man.contains(&format!("] {key}\n"))
                || man.contains(&format!(".B [{key}] ")),
            "jitd.toml(5) does not document `{key}`: add it to packaging/man/pages/jitd.toml.5"
        );
        assert!(
            listed.contains(key),
            "packaging/config/jitd.toml does not list `{key}` with its default"
        );
    }
    let parsed = jitd::config::Config::parse(&settings, Path::new("jitd.toml"))
        .unwrap_or_else(|e| panic!("the packaged jitd.toml, uncommented, is invalid: {e}"));
    assert_eq!(
        parsed, defaults,
        "a default in packaging/config/jitd.toml is not the real default"
    );
    // As shipped (all commented out), it is the defaults too.
    assert_eq!(
        jitd::config::Config::parse(&file, Path::new("jitd.toml")).expect("as shipped"),
        defaults
    );
}

#[test]
fn server_toml_page_and_packaged_file_cover_every_key_with_its_default() {
    use jit_server::config::Settings;
    let defaults = Settings::default();
    let all = fields(&format!("{defaults:#?}"));
    assert!(
        all.contains("data_dir") && all.contains("attempt_ttl"),
        "{all:?}"
    );
    let man = page("server.toml.5");
    let file = packaged("server.toml");
    let settings = uncommented(&file);
    let listed = keys_in(&settings);
    for key in &all {
        assert!(
            man.contains(&roff_name(key))
                || man.contains(&format!("] {key}\n"))
                || man.contains(&format!(".B [{key}] ")),
            "server.toml(5) does not document `{key}`: add it to packaging/man/pages/server.toml.5"
        );
        assert!(
            listed.contains(key),
            "packaging/config/server.toml does not list `{key}`"
        );
    }
    let mut parsed = Settings::parse(&settings, Path::new("server.toml"))
        .unwrap_or_else(|e| panic!("the packaged server.toml, uncommented, is invalid: {e}"));
    // The examples without a fixed default: public_url (none), database_url (derived), the
    // portal's own listener (none) and the notification servers (none).
    assert_eq!(parsed.database_url(), defaults.database_url());
    parsed.public_url = None;
    parsed.database_url = None;
    parsed.portal.listen = None;
    parsed.portal.cert = None;
    parsed.portal.key = None;
    parsed.push.ntfy_server = None;
    parsed.push.webhook_url = None;
    parsed.push.webhook_secret_file = None;
    parsed.push.ca_file = None;
    assert_eq!(
        format!("{parsed:#?}"),
        format!("{defaults:#?}"),
        "a default in packaging/config/server.toml is not the real default"
    );
    let shipped = Settings::parse(&file, Path::new("server.toml")).expect("as shipped");
    assert_eq!(format!("{shipped:#?}"), format!("{defaults:#?}"));
}
