//! Reading a configuration file, and errors that say where in it something is wrong: the file,
//! then the line and the key, so the operator can go straight there.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    /// A value that parsed but that the program refuses; `message` names the key.
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// A refused value of `key` (dotted for a table: `services.deny_as_prompt`), located on the
    /// line of `text` that sets it: "line N, key: why" (just "key: why" when the file does not set
    /// it, so the refused value is a default that another setting contradicts).
    pub fn at_key(path: &Path, text: &str, key: &str, why: &str) -> Self {
        let message = match line_of_key(text, key) {
            Some(line) => format!("line {line}, {key}: {why}"),
            None => format!("{key}: {why}"),
        };
        Self::invalid(path, message)
    }
}

/// The whole file at `path`.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// `text` (the contents of `path`, named in errors) as a `T`. Unknown keys are errors when `T`
/// says `deny_unknown_fields`; the error names the line, shows it, and names the key.
pub fn from_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::invalid(path, describe(&e, text)))
}

/// Turns a toml error into "line N (the line): what"; toml's message names the key.
fn describe(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_owned();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line} ({snippet}): {msg}")
        }
        None => msg,
    }
}

/// The line on which a (possibly dotted, `table.key`) key is set.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = match dotted.rsplit_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, dotted),
    };
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_owned());
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        if k.trim() == key && current.as_deref() == table {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only through Debug
    struct T {
        a: Option<u32>,
        table: Option<Table>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Table {
        b: Option<u32>,
    }

    const PATH: &str = "/etc/jit/x.toml";

    fn parse(text: &str) -> Result<T, String> {
        from_toml(text, Path::new(PATH)).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("a = 1\n\n[table]\nbb = 2\n").unwrap_err();
        assert!(
            err.starts_with("/etc/jit/x.toml: line 4 (bb = 2): "),
            "{err}"
        );
        assert!(err.contains("unknown field `bb`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let err = parse("a = \"one\"\n").unwrap_err();
        assert!(
            err.starts_with("/etc/jit/x.toml: line 1 (a = \"one\"): "),
            "{err}"
        );
    }

    #[test]
    fn refused_values_are_located_by_key() {
        let text = "a = 1\n[table]\n  b = 2\n";
        let at = |key| ConfigError::at_key(Path::new(PATH), text, key, "too big").to_string();
        assert_eq!(at("a"), "/etc/jit/x.toml: line 1, a: too big");
        assert_eq!(at("table.b"), "/etc/jit/x.toml: line 3, table.b: too big");
        // `b` outside its table, and a key the file does not set: no line to point at.
        assert_eq!(at("b"), "/etc/jit/x.toml: b: too big");
        assert_eq!(at("table.c"), "/etc/jit/x.toml: table.c: too big");
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = read(Path::new("/nonexistent/jit.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read /nonexistent/jit.toml: "),
            "{err}"
        );
    }
}
