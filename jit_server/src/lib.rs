//! The jit central service.
//!
//! It owns persons, groups, shared accounts, hosts, reservations, second factors and the audit
//! log, and serves them over an HTTPS JSON API (`/v1`, see docs/api.md). Policy lives here and
//! in plain functions that take `now` as an argument; the database enforces exclusivity and
//! single use, so several server processes can share one database.
//!
//! Map: [`cli`] (the command line, also rendered into jit-server(8)), [`config`] (server.toml),
//! [`init`] (data directory, CA, keys, admin token), [`serve`] (TLS listener), [`api`] (HTTP
//! handlers), [`login`] (the login decision: facts, one pure `decide`, applying the outcome),
//! [`portal`] (the web pages), [`push`] (notifications of push approvals), [`store`] (SQL), [`rules`] (reservation rules), [`totp`] (codes),
//! [`keys`] (at-rest encryption and token hashing).

pub mod api;
pub mod change_feed;
pub mod cli;
pub mod config;
pub mod error;
pub mod export;
pub mod init;
pub mod keys;
pub mod login;
pub mod portal;
pub mod push;
pub mod retry;
pub mod rotate;
pub mod rules;
pub mod serve;
pub mod store;
pub mod tls;
pub mod totp;
