//! ntfy: one JSON message per notification, published to the person's own topic. It names the
//! host, the account and the source of the login, and carries a `view` action that opens the
//! approval page. Never an action that approves by itself (whoever reads the topic would see
//! it), and never the number.

use super::{Notice, NoticeKind};

/// An ntfy topic as persons may choose it: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The body POSTed to the ntfy server's root URL (ntfy's "publish as JSON").
pub fn message(n: &Notice, topic: &str) -> serde_json::Value {
    let (title, text, link, label, priority) = match n.kind {
        NoticeKind::Sent => (
            format!("Approve login to {} on {}?", n.account, n.host),
            format!(
                "A login to {} on {} {} waits for your approval. Open the approval page and type \
                 the number the login prompt shows. If this was not you, report it there.",
                n.account,
                n.host,
                n.source()
            ),
            n.approve_url(),
            "Open approval page",
            4,
        ),
        NoticeKind::Reported => (
            format!("Login reported: {} on {}", n.account, n.host),
            format!(
                "{} reported a login to {} on {} {} as not theirs. The login was refused and the \
                 reservation released.",
                n.person,
                n.account,
                n.host,
                n.source()
            ),
            n.audit_url(),
            "Open the audit",
            5,
        ),
        NoticeKind::Guessing => (
            format!("Codes guessed: {} on {}", n.account, n.host),
            n.guessing_text(),
            n.audit_url(),
            "Open the audit",
            5,
        ),
    };
    serde_json::json!({
        "topic": topic,
        "title": title,
        "message": text,
        "priority": priority,
        "tags": ["key"],
        "click": link,
        "actions": [{ "action": "view", "label": label, "url": link, "clear": true }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(valid_topic("jit-alice_7Qx"));
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(!valid_topic(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_message_names_host_account_and_source_and_only_links() {
        let n = super::super::tests::notice(NoticeKind::Sent);
        let m = message(&n, "jit-alice");
        let text = m.to_string();
        for want in ["web01", "admin", "192.0.2.10", "ssh", "jit-alice"] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!text.contains("47"), "never the number: {text}");
        let actions = m["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0]["action"], "view");
        assert_eq!(
            actions[0]["url"],
            "https://jit.example.org/portal/approve/c0ffee"
        );
    }
}
