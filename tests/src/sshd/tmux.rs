//! A real terminal for `su` and `login`: a tmux server started inside a [`System`]'s namespace
//! (its own socket, so tests run in parallel), one pane running the program, keys typed with
//! `send-keys`, the screen read with `capture-pane`.
//!
//! The pane's shell prints the program's exit status when it ends (`[exit status: N]`), and the
//! pane stays (`remain-on-exit`) so the screen can still be read. The status is read from the
//! screen, not from tmux's `pane_dead_status`: tmux 3.3a now and then leaves the exited pane
//! process unreaped and never marks the pane dead.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::{System, output_within};
use crate::host::PATIENCE;

/// What the pane's shell prints, followed by the status and `]`, when the program has exited.
const EXIT_MARK: &str = "[exit status: ";

/// Bound on one tmux client command.
const TMUX_LIMIT: Duration = Duration::from_secs(30);

pub struct Terminal {
    dir: tempfile::TempDir,
    started: bool,
}

impl Terminal {
    /// Runs `sh -c command` as root on a new 200x50 terminal inside `sys`'s namespace.
    pub fn start(sys: &System, command: &str) -> Terminal {
        assert!(
            std::path::Path::new("/usr/bin/tmux").exists(),
            "tmux missing: apt-get install tmux"
        );
        let dir = tempfile::Builder::new()
            .prefix("jit-tmux-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(
            dir.path().join("tmux.conf"),
            "set -g remain-on-exit on\nset -g history-limit 10000\n",
        )
        .expect("tmux.conf");
        let mut t = Terminal {
            dir,
            started: false,
        };
        let sock = t.socket().display().to_string();
        let conf = t.dir.path().join("tmux.conf").display().to_string();
        let mut cmd = sys.command(&[
            "tmux",
            "-S",
            &sock,
            "-f",
            &conf,
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
            &format!("{command}; echo \"{EXIT_MARK}$?]\""),
        ]);
        cmd.env("TERM", "xterm").env("SHELL", "/bin/sh");
        let out = output_within(cmd, TMUX_LIMIT);
        assert!(out.status.success(), "tmux new-session: {}", text(&out));
        t.started = true;
        t
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("tmux.sock")
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(self.socket()).args(args);
        output_within(cmd, TMUX_LIMIT)
    }

    /// Everything the pane shows, scrollback included, lines joined as the program wrote them.
    pub fn screen(&self) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-J", "-S", "-"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `needle` at least `times` times in all; returns the screen.
    #[track_caller]
    pub fn wait_for_n(&self, needle: &str, times: usize) -> String {
        self.wait_within(needle, times, PATIENCE)
    }

    /// Waits up to `limit` (for what comes only after a reservation's minute) until the screen
    /// shows `needle`; returns the screen.
    #[track_caller]
    pub fn wait_for_within(&self, needle: &str, limit: Duration) -> String {
        self.wait_within(needle, 1, limit)
    }

    #[track_caller]
    fn wait_within(&self, needle: &str, times: usize, limit: Duration) -> String {
        let mut screen = String::new();
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            screen = self.screen();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the terminal never showed {needle:?}; screen:\n{screen}");
    }

    /// Waits until the screen shows `needle`; returns the screen.
    #[track_caller]
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        let out = self.tmux(&["send-keys", "-l", line]);
        assert!(out.status.success(), "send-keys: {}", text(&out));
        let out = self.tmux(&["send-keys", "Enter"]);
        assert!(out.status.success(), "send-keys: {}", text(&out));
    }

    /// Types a secret (a code, a password) at an echo-off prompt. Linux-PAM's conversation
    /// (misc_conv, used by su and login) prints the prompt *before* it turns echo off with
    /// `TCSAFLUSH`, which throws away anything typed in between; so wait until the terminal's
    /// echo is off, which happens right before the program reads.
    pub fn type_secret(&self, secret: &str) {
        let out = self.tmux(&["list-panes", "-F", "#{pane_tty}"]);
        let tty = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(tty.starts_with("/dev/"), "no pane tty: {}", text(&out));
        let start = std::time::Instant::now();
        loop {
            let mut stty = Command::new("stty");
            stty.args(["-a", "-F", &tty]);
            let modes =
                String::from_utf8_lossy(&output_within(stty, TMUX_LIMIT).stdout).into_owned();
            if modes.split_whitespace().any(|m| m == "-echo") {
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the terminal never turned echo off for a secret; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.type_line(secret);
    }

    /// Waits for the program to exit; its exit status.
    #[track_caller]
    pub fn exit_status(&self) -> i32 {
        let screen = self.wait_for(EXIT_MARK);
        let rest = &screen[screen.rfind(EXIT_MARK).unwrap_or(0) + EXIT_MARK.len()..];
        rest.split(']')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no exit status on the screen:\n{screen}"))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.started {
            // Ends the pane's processes (SIGHUP) and the server with them.
            let _ = self.tmux(&["kill-server"]);
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
