//! The web portal: server-rendered pages for persons and admins, served by jit-server itself.
pub mod origin;
