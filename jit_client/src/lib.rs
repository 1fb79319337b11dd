//! HTTPS client for the jit API (placeholder).
