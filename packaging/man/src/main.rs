//! `jit-man man DIR`: writes jit's man pages (roff, uncompressed) into DIR.
//! `jit-man completions DIR`: writes the shell completions of jitd, jit-server and jitctl into
//! DIR/bash, DIR/zsh and DIR/fish.
//!
//! The footer date of the pages comes from `SOURCE_DATE_EPOCH` when it is set (reproducible
//! builds; the Makefile sets it from the last commit), else from the clock. Never writes outside
//! DIR.

use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: jit-man man DIR           (jitd.8, jit-server.8, jitctl.1, pam_jit.8, nss_jit.8, jitd.toml.5, server.toml.5)
       jit-man completions DIR   (bash/, zsh/ and fish/ completions of jitd, jit-server and jitctl)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (what, dir) = match args.as_slice() {
        [what, dir] if what == "man" || what == "completions" => (what.as_str(), Path::new(dir)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let written = if what == "man" {
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
        jit_man::write_all(dir, &date)
    } else {
        jit_man::completions::write_all(dir)
    };
    match written {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let noun = if what == "man" {
                "man pages"
            } else {
                "completions"
            };
            eprintln!(
                "jit-man: cannot write the {noun} into {}: {e}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
