//! What the two modules carry. sshd, login, su, sudo and every process that resolves a user load
//! them, so they link no crypto, and `libnss_jit.so.2` no JSON either: checked on the built files
//! (the debug build, whose debug information names every crate that contributed code), by the
//! symbol names `nm` demangles and by the crates' source paths the compiler leaves in the file.

use std::path::Path;
use std::process::Command;

use jit_tests::host::cdylib;

/// Crates that do crypto (or TLS, which is crypto): none may reach either module.
const CRYPTO: &[&str] = &[
    "ring",
    "sha1",
    "sha2",
    "digest",
    "hmac",
    "pbkdf2",
    "chacha20",
    "chacha20poly1305",
    "argon2",
    "rustls",
    "totp_rs",
];

/// What the NSS module must not carry on top: it reads a binary file, nothing else.
const JSON: &[&str] = &["serde", "serde_json"];

/// The forbidden crates whose code is in `so`, each with one piece of evidence.
fn crates_in(so: &Path, forbidden: &[&str]) -> Vec<String> {
    let bytes = std::fs::read(so).expect("read the module");
    let nm = Command::new("nm")
        .args(["--demangle", "--defined-only"])
        .arg(so)
        .output()
        .expect("nm (apt-get install binutils)");
    assert!(nm.status.success(), "nm {}", so.display());
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let mut found = Vec::new();
    for krate in forbidden {
        // A path into the crate's sources (panic locations, debug information): `/sha2-0.10.9/`.
        let path = format!("/{}-", krate.replace('_', "-"));
        let in_paths = bytes
            .windows(path.len() + 1)
            .any(|w| w.starts_with(path.as_bytes()) && w.last().is_some_and(u8::is_ascii_digit));
        // A function of the crate: `sha2::…`, not `String::…` or `my_sha2::…`.
        let prefix = format!("{krate}::");
        let symbol = symbols.lines().find(|l| {
            l.match_indices(&prefix).any(|(i, _)| {
                l[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            })
        });
        match (in_paths, symbol) {
            (_, Some(line)) => found.push(format!("{krate} (symbol {line})")),
            (true, None) => found.push(format!("{krate} (source path {path}…)")),
            (false, None) => {}
        }
    }
    found
}

#[test]
fn the_modules_link_no_crypto_and_nss_jit_no_json() {
    let pam = cdylib("libpam_jit.so");
    let nss = cdylib("libnss_jit.so");
    let mut nss_forbidden = CRYPTO.to_vec();
    nss_forbidden.extend_from_slice(JSON);
    let found = [
        (pam.clone(), crates_in(&pam, CRYPTO)),
        (nss.clone(), crates_in(&nss, &nss_forbidden)),
    ];
    for (so, crates) in &found {
        assert!(
            crates.is_empty(),
            "{} links {}",
            so.display(),
            crates.join(", ")
        );
    }
    // The check can see what it looks for: pam_jit does speak JSON to jitd.
    assert!(
        !crates_in(&pam, JSON).is_empty(),
        "no serde_json found in pam_jit.so: the check no longer sees linked crates"
    );
}
