//! The portal's web origin (`https://host[:port]`): what browsers must send in `Origin`, and the
//! host name passkeys are bound to (the WebAuthn relying-party id).

/// A parsed `https://host[:port]` origin with no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `https://host[:port]` exactly as browsers serialize it (lowercase, no default port).
    pub url: String,
    /// The host name alone: the passkey relying-party id.
    pub host: String,
}

impl Origin {
    /// Parses `https://host[:port][/]`; None for anything else (another scheme, a path, user
    /// info, an empty or odd host).
    pub fn parse(s: &str) -> Option<Origin> {
        let rest = s.trim().strip_suffix('/').unwrap_or(s.trim());
        let authority = rest.strip_prefix("https://")?;
        Self::from_authority(authority)
    }

    /// From a `Host` header value (`host[:port]`), as the browser addressed the server.
    pub fn from_authority(authority: &str) -> Option<Origin> {
        let authority = authority.to_ascii_lowercase();
        if authority.is_empty()
            || !authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.clone(), None),
            }
        };
        if host.is_empty() || host.starts_with('.') || host.ends_with('.') {
            return None;
        }
        let url = match port {
            None | Some("443") => format!("https://{host}"),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                format!("https://{host}:{p}")
            }
            Some(_) => return None,
        };
        Some(Origin {
            url,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_browsers_send() {
        let o = Origin::parse("https://Jit.Example.org/").unwrap();
        assert_eq!(o.url, "https://jit.example.org");
        assert_eq!(o.host, "jit.example.org");
        let o = Origin::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(
            (o.url.as_str(), o.host.as_str()),
            ("https://127.0.0.1:8443", "127.0.0.1")
        );
        assert_eq!(
            Origin::parse("https://x.org:443").unwrap().url,
            "https://x.org"
        );
        for bad in [
            "http://x.org",
            "https://x.org/portal",
            "https://u@x.org",
            "https://",
            "https://x.org:",
            "https://x.org:8a",
            "x.org",
        ] {
            assert!(Origin::parse(bad).is_none(), "{bad}");
        }
    }
}
