//! Who is on the other end of a PAM socket connection, from the kernel (SO_PEERCRED, through
//! tokio's `peer_cred`). Only root may talk to jitd: pam_jit runs inside sshd, login, su and sudo,
//! all root. Anyone else could otherwise probe reservations or spend a person's codes.

use tokio::net::UnixStream;

/// The peer's credentials as the kernel recorded them at `connect(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = stream.peer_cred()?;
        Ok(Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        })
    }

    /// `Err(message for the peer)` unless the peer is root.
    pub fn check(&self) -> Result<(), String> {
        if self.uid == 0 {
            Ok(())
        } else {
            Err(format!(
                "jitd serves root (uid 0) only; this process runs as uid {}",
                self.uid
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_passes() {
        assert!(
            Peer {
                uid: 0,
                pid: Some(1)
            }
            .check()
            .is_ok()
        );
        let err = Peer {
            uid: 65534,
            pid: None,
        }
        .check()
        .unwrap_err();
        assert!(err.contains("uid 0") && err.contains("65534"), "{err}");
    }

    #[tokio::test]
    async fn reads_our_own_uid_from_the_kernel() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = Peer::of(&a).unwrap();
        // SAFETY: getuid has no preconditions.
        assert_eq!(p.uid, unsafe { libc::getuid() });
        assert_eq!(p.pid, Some(std::process::id() as i32));
    }
}
