//! Text a person or a client typed, on its way into a log line or the audit: what may not appear
//! in it, and how a log line shows it safely.
//!
//! Two kinds of characters can make a line read differently from what was stored:
//! - control characters (`\n`, ESC, …) forge a second line or drive the terminal showing the log;
//! - Unicode format characters (general category Cf: the bidi overrides and isolates such as
//!   U+202E and U+2066, zero-width spaces and joiners such as U+200B) reorder or hide text, so
//!   `admin` and `nimda` can look alike in a terminal, a web page or a SIEM.
//!
//! Free text the server stores refuses both ([`first_unprintable`]); log lines escape both
//! ([`escape_value`], [`escape_line`]). Never panics.

use std::fmt::Write as _;

/// The code-point ranges of general category Cf (format), Unicode 16. A test compares this table
/// with the Unicode character database (ICU's copy), so a newer Unicode that adds one fails it.
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// True for a Unicode format character (general category Cf).
pub fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// True for a character that may not appear in stored free text: a control character or a
/// format character.
pub fn is_unprintable(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// The first control or format character in `s`, if any.
pub fn first_unprintable(s: &str) -> Option<char> {
    s.chars().find(|&c| is_unprintable(c))
}

/// `U+202E` for a character, as an error message names it.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Most characters of one value a log line shows.
pub const MAX_LOGGED_CHARS: usize = 512;

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() && u32::from(c) <= 0xff {
        let _ = write!(out, "\\x{:02x}", u32::from(c));
    } else {
        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
    }
}

/// One value of a `key=value` log line: control characters become `\xNN`, format characters
/// `\u{NNNN}`; a value that is empty or holds a space, quote or `=` is quoted (with `"` and `\`
/// escaped), so a crafted value can neither forge a line nor a field.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars().take(MAX_LOGGED_CHARS) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unprintable(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    if out.is_empty() || out.contains([' ', '"', '=']) {
        format!("\"{out}\"")
    } else {
        out
    }
}

/// A whole log line with its control and format characters escaped as in [`escape_value`], and
/// nothing quoted: the last guard before a line reaches syslog.
pub fn escape_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if is_unprintable(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use icu_properties::CodePointMapData;
    use icu_properties::props::GeneralCategory;

    #[test]
    fn format_table_matches_the_unicode_database() {
        let gc = CodePointMapData::<GeneralCategory>::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(
                is_format(c),
                gc.get(c) == GeneralCategory::Format,
                "{} is {:?} in the Unicode database",
                code_point(c),
                gc.get(c)
            );
        }
    }

    #[test]
    fn unprintable_names_the_character() {
        assert_eq!(first_unprintable("patch openssl"), None);
        assert_eq!(first_unprintable("naïve café ünïcode"), None);
        assert_eq!(first_unprintable("a\u{202e}b\u{200b}"), Some('\u{202e}'));
        assert_eq!(first_unprintable("x\u{2066}"), Some('\u{2066}'));
        assert_eq!(first_unprintable("x\u{1b}[2J"), Some('\u{1b}'));
        assert_eq!(first_unprintable("\u{e0041}"), Some('\u{e0041}'));
        assert_eq!(code_point('\u{202e}'), "U+202E");
        assert_eq!(code_point('\u{e0041}'), "U+E0041");
    }

    #[test]
    fn values_cannot_forge_a_line_or_a_field() {
        assert_eq!(escape_value("admin"), "admin");
        assert_eq!(escape_value(""), "\"\"");
        assert_eq!(
            escape_value("10.0.0.1\nresult=granted x"),
            "\"10.0.0.1\\x0aresult=granted x\""
        );
        assert_eq!(escape_value("nim\u{202e}da"), "nim\\u{202e}da");
        assert_eq!(escape_value("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(escape_value(&"x".repeat(600)).len(), MAX_LOGGED_CHARS);
    }

    #[test]
    fn lines_keep_their_text_and_lose_their_tricks() {
        assert_eq!(escape_line("auth for admin on su"), "auth for admin on su");
        assert_eq!(
            escape_line("for ad\u{2067}min\r\nforged"),
            "for ad\\u{2067}min\\x0d\\x0aforged"
        );
        assert_eq!(escape_line("\u{85}"), "\\x85");
    }
}
