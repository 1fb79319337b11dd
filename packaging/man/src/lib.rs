//! jit's man pages, from one source kept in the repository.
//!
//! - jitd(8), jit-server(8) and jitctl(1) are rendered with clap_mangen from the same clap
//!   definitions the binaries parse (`jitd::cli`, `jit_server::cli`, `jitctl::cli`), followed by
//!   a hand-written roff fragment (`pages/<name>.extra`) with FILES, EXIT STATUS, SEE ALSO.
//! - pam_jit(8), nss_jit(8), jitd.toml(5) and server.toml(5) are hand-written roff
//!   (`pages/<name>.<section>`), with `@VERSION@` and `@DATE@` filled in.
//!
//! The pages are built at package time (`make packages`), never committed. The tests check that
//! the configuration pages name every key the daemons accept.
//! Rendering never touches the file system except through [`write_all`].
//!
//! The shell completions of the three binaries come from the same clap definitions
//! ([`completions`]).

use std::io;
use std::path::Path;

pub mod completions;

/// One rendered page: its file name (`jitd.8`) and its roff text.
pub struct Page {
    pub file: String,
    pub text: String,
}

/// The version written into every page footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const SOURCE: &str = concat!("jit ", env!("CARGO_PKG_VERSION"));
const MANUAL: &str = "jit manual";

/// Hand-written pages: (file name, roff source with @VERSION@ and @DATE@).
const HAND_WRITTEN: [(&str, &str); 4] = [
    ("pam_jit.8", include_str!("../pages/pam_jit.8")),
    ("nss_jit.8", include_str!("../pages/nss_jit.8")),
    ("jitd.toml.5", include_str!("../pages/jitd.toml.5")),
    ("server.toml.5", include_str!("../pages/server.toml.5")),
];

/// Every page, in a stable order. `date` goes into the footer (e.g. "2026-11-23"; roff drops an
/// empty argument, so an empty date becomes "unknown date").
pub fn pages(date: &str) -> io::Result<Vec<Page>> {
    let date = if date.trim().is_empty() {
        "unknown date"
    } else {
        date
    };
    let mut out = vec![
        Page {
            file: "jitd.8".into(),
            text: command_page(
                jitd::cli::command(),
                "8",
                date,
                include_str!("../pages/jitd.extra"),
            )?,
        },
        Page {
            file: "jit-server.8".into(),
            text: command_page(
                jit_server::cli::command(),
                "8",
                date,
                include_str!("../pages/jit-server.extra"),
            )?,
        },
        Page {
            file: "jitctl.1".into(),
            text: command_page(
                jitctl::cli::command(),
                "1",
                date,
                include_str!("../pages/jitctl.extra"),
            )?,
        },
    ];
    for (file, source) in HAND_WRITTEN {
        out.push(Page {
            file: file.into(),
            text: source.replace("@VERSION@", VERSION).replace("@DATE@", date),
        });
    }
    Ok(out)
}

/// Writes every page into `dir` (created if missing).
pub fn write_all(dir: &Path, date: &str) -> io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for page in pages(date)? {
        let path = dir.join(&page.file);
        std::fs::write(&path, page.text)?;
        written.push(path);
    }
    Ok(written)
}

/// The footer date for `SOURCE_DATE_EPOCH` seconds (reproducible builds), as YYYY-MM-DD.
pub fn date_of_epoch(secs: i64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A page for a binary: title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS, then every subcommand in
/// full (its synopsis and options, which clap_mangen alone would leave to pages that do not
/// exist), the EXIT STATUS from clap's after-help, the hand-written `extra` sections, VERSION.
fn command_page(cmd: clap::Command, section: &str, date: &str, extra: &str) -> io::Result<String> {
    let mut cmd = cmd;
    cmd.build();
    let name = cmd.get_name().to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section(section)
        .date(date)
        .source(SOURCE)
        .manual(MANUAL);
    let mut text = String::from(ROFF_PREAMBLE);
    text.push_str(&chunk(|w| man.render_title(w))?);
    text.push_str(&chunk(|w| man.render_name_section(w))?);
    text.push_str(&chunk(|w| man.render_synopsis_section(w))?);
    text.push_str(&chunk(|w| man.render_description_section(w))?);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        text.push_str(&chunk(|w| man.render_options_section(w))?);
    }
    if cmd.has_subcommands() {
        text.push_str(".SH COMMANDS\n");
        for sub in visible_subcommands(&cmd) {
            subcommand(&mut text, sub, &name)?;
        }
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        let t = chunk(|w| man.render_extra_section(w))?;
        text.push_str(&t.replacen(".SH EXTRA", ".SH \"EXIT STATUS\"", 1));
    }
    text.push_str(extra);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&chunk(|w| man.render_version_section(w))?);
    Ok(text)
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// `.SS "jitctl person add"`, what it does, its synopsis and its own options (global options and
/// --help are described once, at the top), then its subcommands, depth first.
fn subcommand(text: &mut String, sub: &clap::Command, parent: &str) -> io::Result<()> {
    let path = format!("{parent} {}", sub.get_name());
    let mut own = sub.clone().bin_name(&path);
    let hidden: Vec<String> = own
        .get_arguments()
        .filter(|a| a.is_global_set() || matches!(a.get_id().as_str(), "help" | "version"))
        .map(|a| a.get_id().to_string())
        .collect();
    for id in hidden {
        own = own.mut_arg(id, |a| a.hide(true));
    }
    let man = clap_mangen::Man::new(own.clone());
    text.push_str(&format!(".SS \"{}\"\n", roff_escape(&path)));
    let about = sub
        .get_long_about()
        .or_else(|| sub.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    for line in about.lines().filter(|l| !l.trim().is_empty()) {
        text.push_str(&roff_escape(line.trim()));
        text.push('\n');
    }
    text.push_str(".PP\n");
    text.push_str(&without_headings(&chunk(|w| {
        man.render_synopsis_section(w)
    })?));
    if own.get_arguments().any(|a| !a.is_hide_set()) {
        text.push_str(".RS\n");
        text.push_str(&without_headings(&chunk(|w| {
            man.render_options_section(w)
        })?));
        text.push_str(".RE\n");
    }
    for s in visible_subcommands(sub) {
        subcommand(text, s, &path)?;
    }
    Ok(())
}

/// The string definition the roff crate puts before every chunk it renders (`\\*(Aq`, a
/// typewriter apostrophe); a page needs it once, at the top.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// One clap_mangen section as text, without the preamble it repeats each time.
fn chunk(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut b = Vec::new();
    render(&mut b)?;
    let s = String::from_utf8(b).map_err(io::Error::other)?;
    Ok(s.strip_prefix(ROFF_PREAMBLE).unwrap_or(&s).to_owned())
}

/// clap_mangen's section output without its `.SH` line (it goes under our own `.SS`).
fn without_headings(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with(".SH"))
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// Escapes text for a roff text line: backslashes, and a leading `.` or `'` (control lines).
fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date_of_epoch(0), "1970-01-01");
        assert_eq!(date_of_epoch(951_782_400), "2000-02-29");
        assert_eq!(date_of_epoch(1_795_392_000), "2026-11-23");
    }

    #[test]
    fn escaping_guards_control_lines() {
        assert_eq!(roff_escape(".hidden"), "\\&.hidden");
        assert_eq!(roff_escape("a\\b-c"), "a\\eb\\-c");
    }
}
