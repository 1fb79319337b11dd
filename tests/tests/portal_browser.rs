//! The web portal in real Chromium (Debian's /usr/bin/chromium, headless), driven by Playwright
//! from PyPI in a virtualenv under target/ (made on first use: `make playwright` does it ahead).
//! A CDP virtual authenticator stands in for passkeys. The scenarios are in
//! tests/portal/browser_test.py; this test starts the server and the persons they use.
//!
//! With JIT_PORTAL_SCREENSHOTS=DIR set, the screenshots go to DIR (`make portal-screenshots`
//! puts them in docs/); otherwise into a temporary directory that is removed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_tests::World;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Pinned: the Python package carries its own driver, so a new one may change behaviour.
const PLAYWRIGHT: &str = "playwright==1.65.2"; // as in the Makefile

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

/// target/playwright-venv/bin/python with Playwright installed (installed now if missing).
fn playwright_python() -> PathBuf {
    let venv = jit_tests::target_dir()
        .parent()
        .expect("target dir")
        .join("playwright-venv");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import playwright.sync_api"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--no-cache-dir", PLAYWRIGHT])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok && ready(&python),
            "cannot install {PLAYWRIGHT} into {} (python3-venv and PyPI are needed; `make playwright`)",
            venv.display()
        );
    }
    python
}

#[test]
fn portal_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    );
    let python = playwright_python();
    let w = World::new();
    let scratch = tempfile::Builder::new()
        .prefix("jit-portal-browser-")
        .tempdir()
        .expect("tempdir");
    let shots = match std::env::var_os("JIT_PORTAL_SCREENSHOTS") {
        Some(d) => PathBuf::from(d),
        None => scratch.path().join("shots"),
    };
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    // WebAuthn needs a host name (not an IP address) as the relying party: localhost.
    let url = w.server.url.replace("127.0.0.1", "localhost");
    let b32 = |s: &[u8]| totp_rs::Secret::new(s.to_vec().into_boxed_slice()).to_base32();
    // web01 joins, so the scenarios can begin a login there as its jitd would (push approval).
    let rt = jit_tests::runtime();
    let host = jit_tests::join_host_creds(&rt, &w.join_token);
    let mut child = Command::new(python)
        .arg(workspace().join("tests/portal/browser_test.py"))
        .env("JIT_URL", &url)
        .env("JIT_CA_PEM", w.server.ca_pem())
        .env("JIT_ADMIN_CODE", &w.server.admin_enrollment_code)
        .env("JIT_ALICE_SECRET", b32(&w.alice.secret))
        .env("JIT_BOB_SECRET", b32(&w.bob.secret))
        .env("JIT_SHOTS", &shots)
        .env("JIT_CHROMIUM", CHROMIUM)
        .env("JIT_HOST_CREDENTIAL", host.credential.expose())
        // Playwright's browser profile and driver files go here, and are removed with it.
        .env("TMPDIR", &tmp)
        .env("HOME", scratch.path())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .process_group(0)
        .spawn()
        .expect("run the browser test");
    // The whole run takes well under a minute; a hang must not hold CI.
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(300) {
            // The Python process, its Playwright driver and Chromium share one process group.
            // SAFETY: signals the process group this test created (process_group(0) above).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("the browser test hung; server log:\n{}", w.server.log());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "browser scenarios failed (see above); server log:\n{}",
        w.server.log()
    );
    // Nothing of Chromium's is left behind in our temporary directory.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}
