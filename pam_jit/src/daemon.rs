//! The connection to jitd: connect with a bounded wait, say hello, exchange one request for one
//! step at a time.
//!
//! Never blocks longer than the configured timeout on jitd: the connect is bounded by
//! `SO_SNDTIMEO` (which Linux applies to `connect(2)` on a Unix socket whose listener's backlog
//! is full), and every exchange arms a deadline that each `read`/`send` re-checks, so a daemon
//! that trickles one byte at a time still cannot stretch one answer past the timeout.
//! Writes use `send(MSG_NOSIGNAL)`: a jitd that hung up must give us `EPIPE`, not a `SIGPIPE`
//! that kills sshd.
//!
//! The listener must run as root (or as this process's own user): the module hands it the
//! person's code and takes its word on who may log in, so a socket that some other user managed
//! to bind at the configured path is refused like a missing one ([`check_listener`]).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jit_pam_proto::frame::{self, FrameError};
use jit_pam_proto::pam::{PROTOCOL_VERSION, Request, Step};

/// Why jitd could not be used. Each of these makes the module fall back to the cache file.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot connect to jitd: {0}")]
    Connect(#[source] io::Error),
    #[error("jitd did not answer properly: {0}")]
    Frame(#[from] FrameError),
    #[error(
        "jitd speaks protocol version {theirs}, this module speaks {ours}; upgrade both together"
    )]
    Version { ours: u32, theirs: u32 },
    #[error("jitd sent `{0}`, which makes no sense at this point of the exchange")]
    Unexpected(&'static str),
    #[error("jitd reported a failure: {0}")]
    Failed(String),
    #[error("jitd sent more than {0} steps for one request")]
    TooManySteps(usize),
}

/// Opens a stream to jitd. The real one is [`SocketPath`]; tests hand out one end of a pair.
pub trait Connect {
    /// Connects, waiting at most `timeout`.
    fn connect(&self, timeout: Duration) -> io::Result<UnixStream>;
}

/// Connects to a Unix socket at a path.
#[derive(Debug, Clone)]
pub struct SocketPath(pub PathBuf);

impl Connect for SocketPath {
    fn connect(&self, timeout: Duration) -> io::Result<UnixStream> {
        let stream = connect_bounded(&self.0, timeout)?;
        // SAFETY: plain syscall.
        let euid = unsafe { libc::geteuid() };
        check_listener(&self.0, listener_uid(&stream)?, euid)?;
        Ok(stream)
    }
}

/// The uid the kernel recorded for the listening end (SO_PEERCRED).
fn listener_uid(stream: &UnixStream) -> io::Result<u32> {
    // SAFETY: ucred is plain old data; all-zeroes is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// `Ok` if the process behind `path` runs as root or as `euid` (ours).
fn check_listener(path: &Path, uid: u32, euid: u32) -> io::Result<()> {
    if uid == 0 || uid == euid {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "the process listening on {} runs as uid {uid}, not root: it is not jitd; \
             check who created that socket",
            path.display()
        ),
    ))
}

/// `UnixStream::connect` has no timeout, and a blocking connect to a listener whose backlog is
/// full waits indefinitely. Linux bounds that wait by the socket's send timeout, so set it first.
fn connect_bounded(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; all-zeroes is a valid (empty) value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path is empty, too long or contains NUL",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: plain syscall; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(timeout))?;
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un and `len` does not exceed its size (checked above).
    let rc = unsafe {
        libc::connect(
            stream.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    if rc != 0 {
        // EINTR is not retried: a retried connect on an interrupted socket is not portable, and
        // the caller treats any error as "jitd unreachable", which fails closed for shared names.
        return Err(io::Error::last_os_error());
    }
    Ok(stream)
}

/// One connection to jitd, past the hello.
pub struct Conn {
    stream: UnixStream,
    timeout: Duration,
    deadline: Instant,
}

impl Conn {
    /// Connects and checks that jitd speaks our protocol version.
    pub fn open(connector: &impl Connect, timeout: Duration) -> Result<Self, DaemonError> {
        let stream = connector.connect(timeout).map_err(DaemonError::Connect)?;
        let mut conn = Self {
            stream,
            timeout,
            deadline: deadline_after(timeout),
        };
        match conn.exchange(&Request::Hello {
            version: PROTOCOL_VERSION,
        })? {
            Step::Hello { version } if version == PROTOCOL_VERSION => Ok(conn),
            Step::Hello { version } => Err(DaemonError::Version {
                ours: PROTOCOL_VERSION,
                theirs: version,
            }),
            Step::Failed { message } => Err(DaemonError::Failed(message)),
            other => Err(DaemonError::Unexpected(step_kind(&other))),
        }
    }

    /// Sends one request and waits (at most the timeout) for jitd's next step.
    pub fn exchange(&mut self, req: &Request) -> Result<Step, DaemonError> {
        self.deadline = deadline_after(self.timeout);
        frame::write_msg(self, req)?;
        Ok(frame::read_msg(self)?)
    }

    /// Time left before the deadline, or `TimedOut`. Never zero: a zero socket timeout would
    /// mean "block forever".
    fn remaining(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "jitd did not answer in time",
            )),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_write_timeout(Some(left))?;
        // SAFETY: `buf` is valid for `buf.len()` bytes; the fd is owned by `self.stream`.
        let n = unsafe {
            libc::send(
                self.stream.as_raw_fd(),
                buf.as_ptr().cast::<libc::c_void>(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n.unsigned_abs())
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `now + timeout`, without the panic `Instant + Duration` has on overflow: an absurd timeout
/// gives a deadline that has already passed, which fails closed.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or(now)
}

/// The step's name for logs: never its text, which may be anything jitd chose to show.
pub fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Hello { .. } => "hello",
        Step::Prompt { .. } => "prompt",
        Step::Info { .. } => "info",
        Step::Error { .. } => "error",
        Step::Wait => "wait",
        Step::Granted { .. } => "granted",
        Step::Denied { .. } => "denied",
        Step::NotShared => "not_shared",
        Step::Allowed => "allowed",
        Step::Session { .. } => "session",
        Step::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pam_jit-daemon-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn connects_to_a_listening_socket() {
        let dir = temp_dir("ok");
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let stream = SocketPath(path.clone())
            .connect(Duration::from_secs(5))
            .unwrap();
        let (_peer, _) = listener.accept().unwrap();
        drop(stream);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_a_listener_run_by_root_or_ourselves_is_trusted() {
        let p = Path::new("/run/jitd/pam.sock");
        assert!(check_listener(p, 0, 1000).is_ok());
        assert!(check_listener(p, 1000, 1000).is_ok());
        let err = check_listener(p, 1001, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            err.to_string().contains("uid 1001") && err.to_string().contains("/run/jitd/pam.sock"),
            "{err}"
        );
    }

    /// A socket bound by another user (nobody) at the configured path is refused.
    #[test]
    fn a_socket_bound_by_another_user_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        jit_sandbox::require_root("it runs a listener as another user");
        let dir = temp_dir("squat");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.join("s");
        let mut squatter = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket,sys,time\n\
                 s=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);s.listen(8)\n\
                 print('ready',flush=True);time.sleep(30)",
            ])
            .arg(&path)
            .uid(65534)
            .gid(65534)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut ready = [0u8; 5];
        squatter
            .stdout
            .take()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        let err = SocketPath(path.clone())
            .connect(Duration::from_secs(5))
            .unwrap_err();
        let _ = squatter.kill();
        let _ = squatter.wait();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("uid 65534"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_socket_is_an_error_not_a_hang() {
        let dir = temp_dir("missing");
        let err = SocketPath(dir.join("nope"))
            .connect(Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = SocketPath(PathBuf::new())
            .connect(Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A listener that never accepts, with a backlog of 0: the first connect is queued, the
    /// second would block forever without the send timeout.
    #[test]
    fn connect_to_a_full_backlog_gives_up() {
        let dir = temp_dir("backlog");
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).unwrap();
        // SAFETY: the listener's fd is valid; listen(2) only changes its backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let mut held = Vec::new();
        let mut last = Ok(());
        // The kernel's exact queue length for backlog 0 is an implementation detail: connect
        // until one refuses. A handful of tries is plenty; an unbounded wait would hang here.
        for _ in 0..8 {
            match SocketPath(path.clone()).connect(Duration::from_millis(200)) {
                Ok(s) => held.push(s),
                Err(e) => {
                    last = Err(e);
                    break;
                }
            }
        }
        let err = last.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        drop(listener);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn writing_to_a_closed_peer_is_an_error() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let mut conn = Conn {
            stream: ours,
            timeout: Duration::from_secs(5),
            deadline: Instant::now(),
        };
        let err = conn.exchange(&Request::Continue).unwrap_err();
        assert!(
            matches!(err, DaemonError::Frame(FrameError::Io(ref e)) if e.kind() == io::ErrorKind::BrokenPipe),
            "{err:?}"
        );
    }
}
