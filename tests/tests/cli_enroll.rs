//! `jitctl enroll` at a terminal, tried as a new user would: a mistyped code is not the end of
//! the enrollment. The person types the next code of the entry already in the app and is
//! enrolled; nothing has to be scanned again.

use std::process::Command;
use std::time::Duration;

use jit_tests::sshd::system::output_within;
use jit_tests::{Jitctl, Server, bin};

/// Runs jitctl on a pseudo-terminal: reads the otpauth URI it shows, types a wrong code, then
/// the right one for the secret it showed. Prints the whole transcript; exits with jitctl's
/// status.
const DRIVER: &str = r#"
import base64, hashlib, hmac, os, pty, re, struct, sys, time, urllib.parse

def totp(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    d = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = d[-1] & 15
    return "%06d" % ((struct.unpack(">I", d[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)

pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def until(pattern, since):
    global seen
    deadline = time.time() + 30
    while not re.search(pattern, seen[since:]):
        if time.time() > deadline:
            sys.stdout.write(seen.decode(errors="replace")); sys.exit(90)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            sys.stdout.write(seen.decode(errors="replace")); sys.exit(91)
        seen += chunk
until(rb"Code shown by the app: ", 0)
secret = urllib.parse.parse_qs(urllib.parse.urlparse(
    re.search(rb"otpauth://\S+", seen).group(0).decode()).query)["secret"][0]
now = int(time.time()) // 30
right = {totp(secret, now + d) for d in (-1, 0, 1)}
wrong = next(totp(secret, now + k) for k in range(5, 50) if totp(secret, now + k) not in right)
mark = len(seen)
os.write(fd, (wrong + "\r").encode())
until(rb"Code shown by the app: ", mark)
os.write(fd, (totp(secret, int(time.time()) // 30) + "\r").encode())
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn a_mistyped_code_at_the_terminal_gets_another_try_with_the_same_entry() {
    let server = Server::start();
    let admin = Jitctl::admin(&server);
    let added = admin.json(&["person", "add", "alice"]);
    let code = added["enrollment_code"].as_str().expect("enrollment_code");
    let alice = Jitctl::new();
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(DRIVER)
        .arg(bin("jitctl"))
        .args(["enroll", code, "--no-qr", "--server", &server.url])
        .args(["--ca-fingerprint", &server.fingerprint])
        .env("JITCTL_CONFIG", alice.dir());
    let out = output_within(cmd, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("that code is not right"), "{text}");
    assert!(
        text.contains("Try again with the code the same entry shows next"),
        "{text}"
    );
    assert!(text.contains("Enrolled alice."), "{text}");
    // The credential works: alice is who the server says she is.
    let status = alice.json(&["status"]);
    assert!(status.is_object() || status.is_array(), "{status}");
}
