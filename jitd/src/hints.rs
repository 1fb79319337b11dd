//! The commands jitd suggests in its messages, written as the operator will type them: with the
//! `--config` they gave, and with `systemctl` only where systemd can start jitd.
//!
//! Pure: what the machine looks like comes in as a [`Service`], read once at the edge.

use std::path::Path;

use crate::config::DEFAULT_CONFIG;

/// Where systemd looks for units, most specific first.
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// `jitd ARGS`, followed by `--config FILE` when FILE is not the default one.
pub fn command(args: &str, config: &Path) -> String {
    if config.as_os_str() == DEFAULT_CONFIG {
        format!("jitd {args}")
    } else {
        format!(
            "jitd {args} --config {}",
            shell_word(&config.to_string_lossy())
        )
    }
}

/// Whether systemd can start jitd on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// systemd is the init system (`/run/systemd/system` exists, as `sd_booted()` checks).
    pub systemd: bool,
    /// A `jitd.service` unit is installed (the jit-host package ships one).
    pub unit: bool,
}

impl Service {
    /// Reads this machine.
    pub fn detect() -> Self {
        Service {
            systemd: Path::new("/run/systemd/system").is_dir(),
            unit: UNIT_DIRS
                .iter()
                .any(|d| Path::new(d).join("jitd.service").exists()),
        }
    }

    /// The unit runs `jitd run` with the default configuration, so it serves only that one.
    fn runs(self, config: &Path) -> bool {
        self.systemd && self.unit && config.as_os_str() == DEFAULT_CONFIG
    }
}

/// The last line of a successful `jitd join`: start jitd, or restart the one that is `running`
/// (a running jitd keeps the credential it started with, which a rejoin has revoked).
pub fn after_join(config: &Path, running: bool, service: Service) -> String {
    match (running, service.runs(config)) {
        (true, true) => "jitd is running with the previous credential: restart it now \
                         (systemctl restart jitd)."
            .to_owned(),
        (true, false) => format!(
            "jitd is running with the previous credential: stop it, then start it again \
             ({}).",
            command("run", config)
        ),
        (false, true) => "Now start jitd: systemctl enable --now jitd".to_owned(),
        (false, false) => format!(
            "Now start jitd (as root; it stays in the foreground): {}",
            command("run", config)
        ),
    }
}

/// What to run on a host that has not joined.
pub fn join(config: &Path) -> String {
    command("join --token TOKEN", config)
}

/// `s` as one shell word: as it is when that is safe, else in single quotes.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = DEFAULT_CONFIG;
    const TRIAL: &str = "/root/jit-trial/etc/jit/jitd.toml";

    #[test]
    fn commands_repeat_a_config_other_than_the_default() {
        assert_eq!(join(Path::new(DEFAULT)), "jitd join --token TOKEN");
        assert_eq!(
            join(Path::new(TRIAL)),
            "jitd join --token TOKEN --config /root/jit-trial/etc/jit/jitd.toml"
        );
        assert_eq!(
            command("run", Path::new("./my jitd's.toml")),
            r"jitd run --config './my jitd'\''s.toml'"
        );
        assert_eq!(
            command("run", Path::new("jitd.toml")),
            "jitd run --config jitd.toml"
        );
    }

    #[test]
    fn after_join_says_systemctl_only_where_the_unit_runs_that_config() {
        let systemd = Service {
            systemd: true,
            unit: true,
        };
        let no_unit = Service {
            systemd: true,
            unit: false,
        };
        let no_systemd = Service {
            systemd: false,
            unit: true,
        };
        let by_hand = format!(
            "Now start jitd (as root; it stays in the foreground): jitd run --config {TRIAL}"
        );
        let cases = [
            (
                DEFAULT,
                false,
                systemd,
                "Now start jitd: systemctl enable --now jitd".to_owned(),
            ),
            (
                DEFAULT,
                false,
                no_unit,
                "Now start jitd (as root; it stays in the foreground): jitd run".to_owned(),
            ),
            (
                DEFAULT,
                false,
                no_systemd,
                "Now start jitd (as root; it stays in the foreground): jitd run".to_owned(),
            ),
            // The unit would start jitd with /etc/jit/jitd.toml, not with the trial's file.
            (TRIAL, false, systemd, by_hand.clone()),
            (TRIAL, false, no_systemd, by_hand),
            (
                DEFAULT,
                true,
                systemd,
                "jitd is running with the previous credential: restart it now \
                 (systemctl restart jitd)."
                    .to_owned(),
            ),
            (
                TRIAL,
                true,
                systemd,
                format!(
                    "jitd is running with the previous credential: stop it, then start it \
                     again (jitd run --config {TRIAL})."
                ),
            ),
        ];
        for (config, running, service, expected) in cases {
            assert_eq!(
                after_join(Path::new(config), running, service),
                expected,
                "{config} running={running} {service:?}"
            );
        }
    }
}
