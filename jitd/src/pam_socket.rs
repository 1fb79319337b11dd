//! The PAM socket: where pam_jit talks to jitd. Root only (SO_PEERCRED), one [`Conversation`] per
//! connection, frames capped at 64 KiB *before* allocating, a timeout on every read and write.
//!
//! Nobody can hoard the connections ([`Slots`]): su and sudo are setuid root, so every local user
//! can open root clients of jitd and leave their prompts waiting. A connection whose process's
//! real uid is not root counts against that uid (at most `per_source` at once) and against all
//! such connections together (at most half of `max_connections`), so the rest stays for sshd,
//! login and root. A prompt counts against its source as well (`addr:` for a remote login, `tty:`
//! at a console: [`crate::source`]), at most `per_source` open at once. The answer timeout ends
//! every prompt.
//!
//! Whatever a client sends (garbage, an oversized or truncated frame, the wrong version, the
//! wrong uid) it gets a `Failed` reply where one can still be written, its connection is closed,
//! and the daemon goes on serving everyone else. Never panics on input, never blocks the accept
//! loop on one client.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jit_proto::frame::{self, FrameError};
use jit_proto::pam::{Request, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use crate::driver::{Conversation, Core, Record};
use crate::peer::{Caller, Peer};
use crate::upstream::Server;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot create the socket directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("{path} exists and is not a socket; remove it or set another `socket` in jitd.toml")]
    NotASocket { path: PathBuf },
    #[error("cannot remove the stale socket {path}: {source}")]
    Stale { path: PathBuf, source: io::Error },
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error(
        "another jitd is already serving {path}; stop it first (systemctl stop jitd), or give \
         this one its own `socket`, `nss_cache` and `state_dir` in jitd.toml"
    )]
    InUse { path: PathBuf },
}

/// Refuses to start next to a live jitd on the same socket: removing its socket would leave it
/// running deaf (PAM would fail closed), and both would write the same cache and queue files.
pub fn ensure_not_in_use(path: &Path) -> Result<(), SocketError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => Err(SocketError::InUse {
                    path: path.to_owned(),
                }),
                // Nobody listens: a socket left by a jitd that did not stop cleanly.
                Err(_) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// The socket file this jitd created, so that it removes exactly that one when it stops (not
/// one that a later jitd put there).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// Inode and change time: an inode number alone is reused at once by some filesystems.
    id: Option<(u64, i64, i64)>,
}

impl SocketFile {
    fn created(path: &Path) -> SocketFile {
        SocketFile {
            path: path.to_owned(),
            id: Self::id(path),
        }
    }

    fn id(path: &Path) -> Option<(u64, i64, i64)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some((m.ino(), m.ctime(), m.ctime_nsec()))
    }

    pub fn remove(&self) {
        let now = Self::id(&self.path);
        if now.is_some() && now == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Per-connection bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For every frame while no prompt is out, and for every write.
    pub request: Duration,
    /// For the answer to a prompt: a person is typing.
    pub answer: Duration,
    /// Connections served at once; more get `Failed` at once.
    pub max_connections: usize,
    /// Connections of one unprivileged uid, and prompts of one source, open at once.
    pub per_source: usize,
}

/// Who holds how many connections and prompts; see the module docs.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    unprivileged_max: usize,
    per_source: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    unprivileged: usize,
    /// Connections by unprivileged uid (`uid:1000`).
    by_uid: HashMap<String, usize>,
    /// Open prompts by source.
    prompts: HashMap<String, usize>,
}

/// Why a connection or a prompt was refused: the message for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// A connection slot; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    slots: Arc<Slots>,
    uid: Option<String>,
}

/// A prompt's slot under its source; given back when dropped.
#[derive(Debug)]
pub struct PromptSlot {
    slots: Arc<Slots>,
    source: String,
}

impl Slots {
    pub fn new(limits: &Limits) -> Arc<Slots> {
        Arc::new(Slots {
            max: limits.max_connections,
            unprivileged_max: (limits.max_connections / 2).max(1),
            per_source: limits.per_source,
            held: Mutex::new(Held::default()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection whose process has real uid `real_uid` (`None`: unknown, which
    /// counts as unprivileged).
    pub fn connection(self: &Arc<Self>, real_uid: Option<u32>) -> Result<ConnectionSlot, Refused> {
        let mut h = self.held();
        if h.total >= self.max {
            return Err(Refused(format!(
                "jitd is busy ({} connections at once); try again",
                self.max
            )));
        }
        let uid = match real_uid {
            Some(0) => None,
            Some(u) => Some(format!("uid:{u}")),
            None => Some("unknown".to_owned()),
        };
        if let Some(key) = &uid {
            if h.by_uid.get(key).copied().unwrap_or(0) >= self.per_source {
                return Err(Refused(format!(
                    "too many logins waiting from {key} ({} at once); finish or cancel one first",
                    self.per_source
                )));
            }
            if h.unprivileged >= self.unprivileged_max {
                return Err(Refused(format!(
                    "jitd is busy ({} logins of ordinary users at once); try again",
                    self.unprivileged_max
                )));
            }
            h.unprivileged += 1;
            *h.by_uid.entry(key.clone()).or_insert(0) += 1;
        }
        h.total += 1;
        Ok(ConnectionSlot {
            slots: self.clone(),
            uid,
        })
    }

    /// A slot for a prompt to `source`.
    pub fn prompt(self: &Arc<Self>, source: &str) -> Result<PromptSlot, Refused> {
        let mut h = self.held();
        let n = h.prompts.entry(source.to_owned()).or_insert(0);
        if *n >= self.per_source {
            return Err(Refused(format!(
                "Too many logins are waiting for an answer from here ({source}, {} at once). \
                 Answer or cancel one first.",
                self.per_source
            )));
        }
        *n += 1;
        Ok(PromptSlot {
            slots: self.clone(),
            source: source.to_owned(),
        })
    }

    /// (connections, prompts) held now.
    #[cfg(test)]
    pub fn in_use(&self) -> (usize, usize) {
        let h = self.held();
        (h.total, h.prompts.values().sum())
    }
}

fn give_back(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut h = self.slots.held();
        h.total = h.total.saturating_sub(1);
        if let Some(key) = &self.uid {
            h.unprivileged = h.unprivileged.saturating_sub(1);
            give_back(&mut h.by_uid, key);
        }
    }
}

impl Drop for PromptSlot {
    fn drop(&mut self) {
        give_back(&mut self.slots.held().prompts, &self.source);
    }
}

/// Creates the parent directory (0755), removes a stale socket (refusing a live one), binds, and
/// makes the socket 0600.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile), SocketError> {
    if let Some(dir) = path.parent() {
        crate::files::ensure_dir(dir, 0o755).map_err(|source| SocketError::Dir {
            path: dir.to_owned(),
            source,
        })?;
    }
    ensure_not_in_use(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| SocketError::Stale {
                path: path.to_owned(),
                source,
            })?
        }
        Ok(_) => {
            return Err(SocketError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(_) => {}
    }
    let bind_err = |source| SocketError::Bind {
        path: path.to_owned(),
        source,
    };
    // The socket is created with the umask's mode: make it 0600 from the start (SO_PEERCRED is
    // checked anyway, this only keeps other users from connecting at all).
    // SAFETY: umask has no preconditions; this runs at startup before connections are served.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let std_listener = bound.map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let file = SocketFile::created(path);
    Ok((
        UnixListener::from_std(std_listener).map_err(bind_err)?,
        file,
    ))
}

/// Accepts connections until `shutdown` resolves.
pub async fn serve<S: Server, R: Record>(
    listener: UnixListener,
    core: Arc<Core<S, R>>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Slots::new(&limits);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!("accept on the PAM socket failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Who connected, from the kernel: the real uid of the process (root for sshd and
        // login, the user who ran it for su and sudo).
        let real_uid = Peer::of(&stream)
            .ok()
            .and_then(|p| p.pid)
            .and_then(crate::source::real_uid);
        match slots.connection(real_uid) {
            Ok(slot) => {
                let (core, slots) = (core.clone(), slots.clone());
                tokio::spawn(async move {
                    connection(stream, core, &slots, limits).await;
                    drop(slot);
                });
            }
            Err(Refused(msg)) => {
                tokio::spawn(async move {
                    tracing::warn!(uid = ?real_uid, "{msg}");
                    let mut stream = stream;
                    let _ =
                        reply(&mut stream, &Step::Failed { message: msg }, limits.request).await;
                });
            }
        }
    }
}

/// Serves one connection to its end.
pub async fn connection<S: Server, R: Record>(
    mut stream: UnixStream,
    core: Arc<Core<S, R>>,
    slots: &Arc<Slots>,
    limits: Limits,
) {
    let peer = match Peer::of(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("cannot read the PAM client's credentials (SO_PEERCRED): {e}");
            let msg = "jitd cannot tell who is connecting; refused".to_owned();
            let _ = reply(&mut stream, &Step::Failed { message: msg }, limits.request).await;
            return;
        }
    };
    if let Err(msg) = peer.check() {
        tracing::warn!(uid = peer.uid, pid = ?peer.pid, "refused a PAM client that is not root");
        let _ = reply(&mut stream, &Step::Failed { message: msg }, limits.request).await;
        return;
    }
    let caller = Caller::of(peer.pid);
    let mut conv = Conversation::new(core, caller);
    // Where this connection's logins come from, and the slot of its open prompt.
    let mut source = None;
    let mut prompt_slot: Option<PromptSlot> = None;
    loop {
        let limit = if conv.awaiting_person() {
            limits.answer
        } else {
            limits.request
        };
        let payload = match tokio::time::timeout(limit, read_frame(&mut stream)).await {
            Ok(Ok(p)) => p,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                tracing::warn!(pid = ?peer.pid, "bad frame from a PAM client: {e}");
                let _ = reply(
                    &mut stream,
                    &Step::Failed {
                        message: e.to_string(),
                    },
                    limits.request,
                )
                .await;
                return;
            }
            Err(_) => {
                let what = if conv.awaiting_person() {
                    "the answer to the prompt"
                } else {
                    "a request"
                };
                let msg = format!("timed out after {}s waiting for {what}", limit.as_secs());
                tracing::info!(pid = ?peer.pid, "{msg}");
                let _ = reply(&mut stream, &Step::Failed { message: msg }, limits.request).await;
                return;
            }
        };
        let req: Request = match frame::decode(&payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(pid = ?peer.pid, "malformed request from a PAM client: {e}");
                let _ = reply(
                    &mut stream,
                    &Step::Failed {
                        message: e.to_string(),
                    },
                    limits.request,
                )
                .await;
                return;
            }
        };
        drop(payload);
        if let Request::AuthStart { ctx } = &req {
            source = Some(crate::source::login_source(
                caller.real_uid,
                ctx.rhost.as_deref(),
                ctx.tty.as_deref(),
            ));
        }
        let mut step = conv.handle(req, jit_clock::now()).await;
        if !conv.awaiting_person() {
            prompt_slot = None;
        } else if prompt_slot.is_none() {
            let src = source.as_deref().unwrap_or("unknown");
            match slots.prompt(src) {
                Ok(slot) => prompt_slot = Some(slot),
                Err(Refused(message)) => {
                    tracing::warn!(pid = ?peer.pid, source = src, "{message}");
                    // The conversation ends here, with its prompt unshown.
                    step = Step::Denied { message };
                }
            }
        }
        let last =
            matches!(step, Step::Denied { .. }) && prompt_slot.is_none() && conv.awaiting_person();
        let last = last || matches!(step, Step::Failed { .. });
        if let Step::Failed { message } = &step {
            tracing::warn!(pid = ?peer.pid, "refused a PAM request: {message}");
        }
        if let Err(e) = reply(&mut stream, &step, limits.request).await {
            tracing::info!(pid = ?peer.pid, "cannot answer the PAM client (gone?): {e}");
            return;
        }
        if last {
            return;
        }
    }
}

/// Reads one frame: the 4-byte length is checked against the cap before the payload buffer is
/// allocated. A clean EOF before the first byte is `Closed`; EOF anywhere else is `Truncated`.
async fn read_frame(stream: &mut UnixStream) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        let n = stream
            .read(&mut header[got..])
            .await
            .map_err(FrameError::Io)?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                FrameError::Truncated
            });
        }
        got += n;
    }
    let len = frame::check_len(header)?;
    let mut payload = Zeroizing::new(vec![0u8; len]);
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(payload)
}

/// Writes one step, within `limit`.
async fn reply(stream: &mut UnixStream, step: &Step, limit: Duration) -> Result<(), FrameError> {
    let bytes = frame::encode(step)?;
    match tokio::time::timeout(limit, stream.write_all(&bytes)).await {
        Ok(r) => r.map_err(FrameError::Io),
        Err(_) => Err(FrameError::TimedOut),
    }
}

#[cfg(test)]
#[path = "pam_socket_tests.rs"]
mod tests;
