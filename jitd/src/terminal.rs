//! Writing jit's word on a session's terminals (the warning a minute before the end, the reason
//! when it ends): every terminal the session's processes hold, and the one PAM named at session
//! open when it names a device. Never blocks: a terminal whose output is stuck (a paused
//! `Ctrl-S`) is skipped.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::process_tree::{self, Terminal};
use crate::sessions::Tracked;

/// The bytes written for `text`: on a line of its own, whatever the terminal's mode (a program
/// in raw mode turns off the newline translation). `text` comes from jitd alone: names are
/// validated, and what the server says is cleaned of control characters before it gets here.
pub fn framed(text: &str) -> Vec<u8> {
    let mut out = b"\r\n".to_vec();
    for line in text.lines() {
        out.extend(
            line.chars()
                .filter(|c| !c.is_control())
                .collect::<String>()
                .as_bytes(),
        );
        out.extend(b"\r\n");
    }
    out
}

/// The terminals of `s`: its processes', then PAM's tty if that is another one.
pub fn of(s: &Tracked) -> Vec<Terminal> {
    let mut out = match s.leader {
        Some(leader) if process_tree::alive(leader) => process_tree::terminals(leader),
        _ => Vec::new(),
    };
    if let Some(path) = s.tty.as_deref().and_then(process_tree::pam_tty_device)
        && let Ok(meta) = std::fs::metadata(&path)
        && !out.iter().any(|t| t.device == meta.rdev())
    {
        out.push(Terminal {
            name: path.display().to_string(),
            path,
            device: meta.rdev(),
        });
    }
    out
}

/// Writes `text` on every terminal of `s`; the names of those it reached.
pub fn tell(s: &Tracked, text: &str) -> Vec<String> {
    let bytes = framed(text);
    of(s)
        .into_iter()
        .filter(|t| match write_to(&t.path, &bytes) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(terminal = %t.name, "cannot write on the session's terminal: {e}");
                false
            }
        })
        .map(|t| t.name)
        .collect()
}

fn write_to(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_stands_on_its_own_lines_without_control_characters() {
        assert_eq!(
            framed("jit: one\nsecond\u{1b}[2J line"),
            b"\r\njit: one\r\nsecond[2J line\r\n".to_vec()
        );
    }

    /// A real pseudo-terminal: what jitd writes comes out on the other side.
    #[test]
    fn writes_reach_a_pseudo_terminal() {
        let (mut master, mut s) = (0, 0);
        // SAFETY: openpty fills the two descriptors; no name, termios or size is passed.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0);
        let me = std::process::id();
        let path = std::path::PathBuf::from(format!("/proc/{me}/fd/{s}"));
        write_to(&path, &framed("jit: hello")).unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: reading into a buffer of ours from the master we opened.
        let n = unsafe { libc::read(master, buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n > 0);
        let got = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
        assert!(got.contains("jit: hello"), "{got:?}");
        // SAFETY: closing the descriptors openpty gave us.
        unsafe {
            libc::close(master);
            libc::close(s);
        }
    }
}
