//! Link settings for the cdylib only (the rlib and the probe binary are unaffected):
//! - the SONAME glibc loads it by, `libnss_jit.so.2` (like glibc's own libnss_files.so.2): the
//!   packages install it under that name in the library directory, where a shared object without
//!   a SONAME is a packaging error;
//! - both the GNU and the SysV symbol hash sections, which RPM's lint requires of a library.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_jit.so.2");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--hash-style=both");
}
