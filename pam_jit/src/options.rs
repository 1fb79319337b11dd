//! The module's arguments from the `/etc/pam.d` line:
//! `socket=PATH timeout=SECONDS cache=PATH joined=PATH local_password debug`.
//!
//! Parsing never fails: a bad or unknown argument becomes a [`Options::problems`] entry and the
//! default stays in force. What the module does about problems is decided in [`crate::relay`]
//! (shared accounts are refused, everybody else is untouched), because a typo in `/etc/pam.d`
//! must not lock every user of the host out, yet must not open a shared account either.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use jit_nss_cache::joined::DEFAULT_PATH as DEFAULT_JOINED;
use jit_nss_cache::{DEFAULT_RUN_PATH, DEFAULT_STATE_PATH};
use jit_pam_proto::pam::DEFAULT_SOCKET;

/// Default bound on one exchange with jitd.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest `timeout=` accepted. sshd's `LoginGraceTime` is 120 s by default; a jitd that needs
/// longer than this for one answer is broken, and waiting longer only keeps a login hanging.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// jitd's PAM socket.
    pub socket: PathBuf,
    /// Bound on each exchange with jitd (send one request, receive one step).
    pub timeout: Duration,
    /// NSS cache files to consult, in order, when jitd cannot be asked.
    pub cache: Vec<PathBuf>,
    /// The joined marker jitd writes: tells a joined host without a readable list (refuse uid 0
    /// and the always-guarded names) from one that never joined (refuse nobody).
    pub joined: PathBuf,
    /// Log each step of the exchange (kinds only, never texts typed by the person) to syslog.
    pub debug: bool,
    /// Break-glass opt-in for this line's service: when jit refuses a shared account (or cannot
    /// decide), step aside so that the stack's next module (pam_unix: the account's local
    /// password) decides. Local logins only; see [`crate::relay`] (Break-glass).
    pub local_password: bool,
    /// Arguments that were unknown or invalid, as messages for the system log. Not empty means
    /// the module is misconfigured.
    pub problems: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            timeout: DEFAULT_TIMEOUT,
            cache: vec![
                PathBuf::from(DEFAULT_RUN_PATH),
                PathBuf::from(DEFAULT_STATE_PATH),
            ],
            joined: PathBuf::from(DEFAULT_JOINED),
            debug: false,
            local_password: false,
            problems: Vec::new(),
        }
    }
}

impl Options {
    /// Parses the module arguments. Later arguments override earlier ones, as with most modules.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut o = Self::default();
        for raw in args {
            let Ok(arg) = std::str::from_utf8(raw) else {
                o.problems.push(format!(
                    "argument `{}` is not UTF-8; ignored",
                    String::from_utf8_lossy(raw)
                ));
                continue;
            };
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (arg, None),
            };
            match (key, value) {
                ("debug", None) => o.debug = true,
                ("local_password", None) => o.local_password = true,
                ("socket", Some(v)) => match absolute_path(v) {
                    Some(p) if v.len() <= MAX_SOCKET_PATH => o.socket = p,
                    Some(_) => o.problems.push(format!(
                        "`socket={v}` is longer than {MAX_SOCKET_PATH} bytes, the limit for a \
                         Unix socket path; using {}",
                        o.socket.display()
                    )),
                    None => o.problems.push(format!(
                        "`socket={v}` is not an absolute path; using {}",
                        o.socket.display()
                    )),
                },
                ("cache", Some(v)) => match absolute_path(v) {
                    Some(p) => o.cache = vec![p],
                    None => o.problems.push(format!(
                        "`cache={v}` is not an absolute path; using the default cache files"
                    )),
                },
                ("joined", Some(v)) => match absolute_path(v) {
                    Some(p) => o.joined = p,
                    None => o.problems.push(format!(
                        "`joined={v}` is not an absolute path; using {}",
                        o.joined.display()
                    )),
                },
                ("timeout", Some(v)) => match parse_timeout(v) {
                    Some(t) => o.timeout = t,
                    None => o.problems.push(format!(
                        "`timeout={v}` is not a number of seconds between 0 and {}; using {}",
                        MAX_TIMEOUT.as_secs(),
                        o.timeout.as_secs_f64()
                    )),
                },
                _ => o.problems.push(format!(
                    "unknown argument `{arg}` (known: socket=PATH, timeout=SECONDS, cache=PATH, \
                     joined=PATH, local_password, debug); ignored"
                )),
            }
        }
        o
    }

    /// True if any argument was unknown or invalid.
    pub fn misconfigured(&self) -> bool {
        !self.problems.is_empty()
    }
}

fn absolute_path(v: &str) -> Option<PathBuf> {
    let p = PathBuf::from(v);
    (p.is_absolute() && !p.as_os_str().as_bytes().contains(&0)).then_some(p)
}

/// Seconds, fractions allowed (`timeout=0.5`), strictly positive and at most [`MAX_TIMEOUT`].
fn parse_timeout(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    let d = Duration::try_from_secs_f64(secs).ok()?;
    (d <= MAX_TIMEOUT && !d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::parse(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn defaults_point_at_jitd_and_both_cache_copies() {
        let o = parse(&[]);
        assert_eq!(o.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(o.timeout, Duration::from_secs(10));
        assert_eq!(
            o.cache,
            vec![
                PathBuf::from(DEFAULT_RUN_PATH),
                PathBuf::from(DEFAULT_STATE_PATH)
            ]
        );
        assert_eq!(o.joined, PathBuf::from("/etc/jit/joined"));
        assert!(!o.debug);
        assert!(!o.local_password, "break-glass is opt-in");
        assert!(!o.misconfigured());
    }

    #[test]
    fn known_options_are_applied() {
        let o = parse(&[
            "socket=/tmp/x/pam.sock",
            "timeout=0.25",
            "cache=/tmp/x/nss.cache",
            "joined=/tmp/x/joined",
            "local_password",
            "debug",
        ]);
        assert_eq!(o.socket, PathBuf::from("/tmp/x/pam.sock"));
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.cache, vec![PathBuf::from("/tmp/x/nss.cache")]);
        assert_eq!(o.joined, PathBuf::from("/tmp/x/joined"));
        assert!(o.debug);
        assert!(o.local_password);
        assert!(!o.misconfigured(), "{:?}", o.problems);
    }

    #[test]
    fn bad_and_unknown_options_are_problems_and_keep_defaults() {
        let cases: &[(&str, &str)] = &[
            (
                "sokcet=/tmp/pam.sock",
                "unknown argument `sokcet=/tmp/pam.sock`",
            ),
            ("debug=yes", "unknown argument `debug=yes`"),
            (
                "local_password=yes",
                "unknown argument `local_password=yes`",
            ),
            ("local_pasword", "unknown argument `local_pasword`"),
            ("socket", "unknown argument `socket`"),
            ("socket=relative.sock", "not an absolute path"),
            ("cache=", "not an absolute path"),
            ("joined=joined", "not an absolute path"),
            ("timeout=abc", "not a number of seconds"),
            ("timeout=0", "not a number of seconds"),
            ("timeout=-3", "not a number of seconds"),
            ("timeout=NaN", "not a number of seconds"),
            ("timeout=inf", "not a number of seconds"),
            ("timeout=121", "not a number of seconds"),
        ];
        for (arg, want) in cases {
            let o = parse(&[arg]);
            assert_eq!(o.problems.len(), 1, "{arg}: {:?}", o.problems);
            assert!(o.problems[0].contains(want), "{arg}: {}", o.problems[0]);
            assert_eq!(
                Options {
                    problems: Vec::new(),
                    ..o
                },
                Options::default(),
                "{arg}"
            );
        }
        let long = format!("socket=/{}", "s".repeat(MAX_SOCKET_PATH));
        assert!(parse(&[&long]).problems[0].contains("longer than"));
        let o = Options::parse([&b"cache=/tmp/\xff"[..]]);
        assert!(o.problems[0].contains("not UTF-8"), "{:?}", o.problems);
    }
}
