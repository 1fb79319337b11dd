//! The portal on a listener of its own, with a certificate from files (as from a company CA or
//! ACME), tried as an admin would set it up: browsers' TLS trusts that certificate, the API's
//! listener keeps its pinned CA, and the portal's listener serves the portal only.

use std::process::Command;

use jit_tests::{Server, wait_for};

/// A free loopback port (the portal listener's address must be known before it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn the_portal_has_its_own_listener_with_a_certificate_from_files() {
    let mut server = Server::start();
    let dir = server.dir.path().to_owned();
    let (cert, key) = (dir.join("portal.pem"), dir.join("portal.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    server.kill();
    let addr = server.addr();
    server.run_with_config(
        &addr,
        &format!(
            "[portal]\nlisten = \"127.0.0.1:{port}\"\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    let portal = format!("https://localhost:{port}");
    let curl = |url: &str, ca: &std::path::Path| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(ca)
            .arg(url)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(
        "the portal listener",
        std::time::Duration::from_secs(10),
        || curl(&format!("{portal}/portal/login"), &cert) == "200",
    );
    // Only the portal there: the API stays on the pinned listener.
    assert_eq!(curl(&format!("{portal}/v1/whoami"), &cert), "404");
    assert_eq!(curl(&format!("{portal}/"), &cert), "303");
    // The jit CA does not vouch for the portal's certificate, nor the other way round.
    assert_eq!(
        curl(&format!("{portal}/portal/login"), &server.ca_pem()),
        "000"
    );
    let api = server.url.replace("127.0.0.1", "localhost");
    assert_eq!(
        curl(&format!("{api}/portal/login"), &server.ca_pem()),
        "200"
    );
    assert!(server.log().contains(&format!(
        "portal listening on https://127.0.0.1:{port}/portal/"
    )));
    // A listener without its certificate is a configuration error naming the keys.
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, format!("[portal]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    let out = Command::new(jit_tests::bin("jit-server"))
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("portal.listen, portal.cert and portal.key go together"),
        "{err}"
    );
}
