//! jitctl: the command line for people (reserve, release, status, enroll) and for admins
//! (persons, groups, accounts, hosts, audit).
//!
//! The library half exists so packaging can render man pages from [`cli::command`]; the logic
//! lives in [`commands`], the credential file in [`config`], printing in [`output`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod output;
pub mod when;
