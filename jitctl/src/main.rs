//! `jitctl`: see the library crate for the map; this file only runs a command and maps the
//! outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use jitctl::cli::Cli;
use jitctl::{commands, exit, output};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::code::USAGE
            } else {
                exit::code::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let as_json = cli.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e, as_json);
            ExitCode::from(e.exit_code())
        }
    }
}
