//! Connection bounds (`[connections]` in server.toml): a client that connects and then sends
//! nothing — before the TLS handshake, after it, over HTTP/1.1 or HTTP/2, or between keep-alive
//! requests — is disconnected, so such clients cannot use up the server's connection slots; and
//! normal clients are unaffected, also when the server closed their idle pooled connection.
//! And each accepted connection sends small segments at once (Nagle's algorithm off).

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use jit_tests::{Server, client_for};

/// Far longer than any bound configured here: waits, never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// A `jit-server run` with short connection bounds (1 s).
fn start_bounded() -> Server {
    let mut server = Server::start();
    server.kill();
    server.run_with_config(
        "127.0.0.1:0",
        "[connections]\nhandshake_timeout = \"1s\"\nheader_timeout = \"1s\"\n\
         idle_timeout = \"1s\"\nrequest_timeout = \"5s\"\n",
    );
    server
}

/// Connects, does the TLS handshake offering `alpn`, sends `send` (nothing, one HTTP/1.1
/// request, or the HTTP/2 preface), then reads until the server closes the connection.
/// Returns what the helper saw: "handshake PROTO", "received N", then "closed" or "still open".
fn idle_tls_client(s: &Server, alpn: &str, send: &str) -> String {
    const SCRIPT: &str = r#"
import socket, ssl, sys
host, port, ca, alpn, send, patience = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols([alpn])
raw = socket.create_connection((host, int(port)), timeout=float(patience))
s = ctx.wrap_socket(raw, server_hostname="localhost")
print("handshake", s.selected_alpn_protocol(), flush=True)
if send == "h1":
    s.sendall(b"GET /v1/nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
elif send == "h2":
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
got = b""
state = "closed"
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except socket.timeout:
    state = "still open"
except (ConnectionError, ssl.SSLError, OSError):
    pass
print("received", len(got), got[:12])
print(state)
"#;
    let (host, port) = s
        .addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &host, &port])
        .arg(s.ca_pem())
        .args([alpn, send, &PATIENCE.as_secs().to_string()])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn silent_and_idle_connections_are_closed_and_clients_still_work() {
    let server = start_bounded();
    let s = &server;

    // No TLS handshake at all: closed once handshake_timeout passes.
    let mut tcp = TcpStream::connect(s.addr()).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes to a client that sent nothing"),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the server kept a silent TCP connection open: {e}"
        ),
    }

    // After the handshake, HTTP/1.1 and HTTP/2, nothing sent: closed.
    for alpn in ["http/1.1", "h2"] {
        let out = idle_tls_client(s, alpn, "nothing");
        assert!(out.contains(&format!("handshake {alpn}")), "{out}");
        assert!(out.ends_with("closed\n"), "{alpn}, nothing sent: {out}");
    }
    // HTTP/2 with its preface and settings, then nothing: closed.
    let out = idle_tls_client(s, "h2", "h2");
    assert!(out.ends_with("closed\n"), "h2 preface then idle: {out}");
    // One HTTP/1.1 request answered, then idle on the kept-alive connection: closed.
    let out = idle_tls_client(s, "http/1.1", "h1");
    assert!(
        out.contains("b'HTTP/1.1 404"),
        "the request is answered: {out}"
    );
    assert!(out.ends_with("closed\n"), "keep-alive then idle: {out}");

    // Normal clients: curl over HTTP/2 and HTTP/1.1, and a client whose pooled connection the
    // server closed while it was idle.
    let (code, body) = s.curl("GET", "/v1/whoami", Some(&s.admin_token), None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = s.curl_with(
        &["--http1.1"],
        "GET",
        "/v1/whoami",
        Some(&s.admin_token),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let admin = jit_tests::Jitctl::admin(s);
    let client = client_for(&admin);
    let rt = jit_tests::runtime();
    assert!(rt.block_on(client.whoami()).is_ok());
    // Longer than idle_timeout: the pooled connection is gone; the client reconnects.
    std::thread::sleep(Duration::from_secs(3));
    let who = rt
        .block_on(client.whoami())
        .expect("a new connection after the idle one closed");
    assert_eq!(who.name, "admin");
    admin.ok(&["person", "add", "carol"]);
}

/// The server's end of `client`'s connection, copied out of the server process with
/// `pidfd_getfd` (the test runs as root), once the server has accepted it.
fn server_end_of(server: &Server, client: &TcpStream) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pid = server.pid().expect("the server runs");
    let want = client.local_addr().unwrap();
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a descriptor just opened, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: pidfd_getfd copies descriptor `n` of the process into this one, or returns -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0) };
        if fd < 0 {
            continue;
        }
        // SAFETY: a descriptor just copied in, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: sockaddr_in is plain old data; all-zeroes is a valid value.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `addr` and `len` are valid for writes of the sizes given.
        let got = unsafe { libc::getpeername(fd.as_raw_fd(), (&raw mut addr).cast(), &mut len) };
        if got == 0
            && i32::from(addr.sin_family) == libc::AF_INET
            && u16::from_be(addr.sin_port) == want.port()
        {
            return Some(fd);
        }
    }
    None
}

/// Whether Nagle's algorithm is off on the socket `fd`.
fn nodelay(fd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `on` and `len` are valid for writes of the sizes given.
    let got = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut on).cast(),
            &mut len,
        )
    };
    assert_eq!(got, 0, "getsockopt: {}", std::io::Error::last_os_error());
    on == 1
}

/// Each accepted connection has Nagle's algorithm off. With it on, a response that leaves in
/// two TLS records waited for the client's delayed ACK, and logins took 40 ms more now and then.
#[test]
fn accepted_connections_send_without_delay() {
    let server = Server::start();
    let client = TcpStream::connect(server.addr()).unwrap();
    let mut end = None;
    jit_tests::wait_for("the server to accept the connection", PATIENCE, || {
        end = server_end_of(&server, &client);
        end.is_some()
    });
    let end = end.unwrap();
    // The server sets it in the connection's task, a moment after the accept.
    jit_tests::wait_for(
        "the server to turn Nagle's algorithm off on its end of the connection",
        PATIENCE,
        || nodelay(&end),
    );
}
