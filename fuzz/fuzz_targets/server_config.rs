//! server.toml, as an admin may write it: every mistake is an error that names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/jit/server.toml");
    if let Err(e) = jit_server::config::Settings::parse(text, path) {
        assert!(e.to_string().contains("/etc/jit/server.toml"), "{e}");
    }
});
