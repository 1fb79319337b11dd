//! `jit-man DIR`: writes jit's man pages (roff, uncompressed) into DIR.
//!
//! The footer date comes from `SOURCE_DATE_EPOCH` when it is set (reproducible builds; the
//! Makefile sets it from the last commit), else from the clock. Never writes outside DIR.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!(
            "usage: jit-man DIR   (writes jitd.8, jit-server.8, jitctl.1, pam_jit.8, nss_jit.8, jitd.toml.5, server.toml.5)"
        );
        return ExitCode::from(2);
    };
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => match s.trim().parse::<i64>() {
            Ok(secs) => jit_man::date_of_epoch(secs),
            Err(_) => {
                eprintln!("jit-man: SOURCE_DATE_EPOCH={s:?} is not a number of seconds");
                return ExitCode::from(2);
            }
        },
        Err(_) => jit_man::date_of_epoch(jit_clock::now()),
    };
    match jit_man::write_all(std::path::Path::new(dir), &date) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-man: cannot write the man pages into {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
