//! jitd.toml, as an admin may write it: every mistake is an error that names the file, never a
//! panic in the daemon that guards root.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/jit/jitd.toml");
    if let Err(e) = jitd::config::Config::parse(text, path) {
        assert!(e.to_string().contains("/etc/jit/jitd.toml"), "{e}");
    }
});
