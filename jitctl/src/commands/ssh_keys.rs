//! key add|list|remove: persons' ssh public keys. The server validates a key; jitctl only makes
//! sure a private key never leaves this machine.

use std::io::Read;
use std::path::{Path, PathBuf};

use jit_proto::api::{NewSshKey, SshKey};
use jit_proto::timefmt::utc;

use super::{Ctx, name};
use crate::cli::KeyCmd;
use crate::exit::{CliError, CliResult};
use crate::output::{self, or_dash};

/// Public key files tried, in this order, when none is named (as ssh-copy-id and ssh do).
const DEFAULT_FILES: [&str; 5] = [
    "id_ed25519.pub",
    "id_ed25519_sk.pub",
    "id_ecdsa.pub",
    "id_ecdsa_sk.pub",
    "id_rsa.pub",
];

/// Larger than any public key line the server accepts; a bigger file is not a public key.
const MAX_FILE_BYTES: u64 = 16 * 1024;

pub fn key(ctx: &Ctx, cmd: KeyCmd) -> CliResult<()> {
    match cmd {
        KeyCmd::Add { file, person } => add(ctx, file, person),
        KeyCmd::List { person } => list(ctx, person),
        KeyCmd::Remove { key } => remove(ctx, &key),
    }
}

fn default_file() -> CliResult<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| CliError::Usage("name the public key file: jitctl key add FILE".into()))?;
    let ssh = home.join(".ssh");
    DEFAULT_FILES
        .iter()
        .map(|f| ssh.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "no public key found in {} ({}); make one with `ssh-keygen -t ed25519`, or name \
                 the file: jitctl key add FILE",
                ssh.display(),
                DEFAULT_FILES.join(", ")
            ))
        })
}

/// Reads the key file (`-`: stdin); returns how to name it and its trimmed text.
fn read_key(file: &Path) -> CliResult<(String, String)> {
    let (shown, reader): (String, Box<dyn Read>) = if file == Path::new("-") {
        ("stdin".into(), Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::Local(format!("cannot read {}: {e}", file.display())))?;
        (file.display().to_string(), Box::new(f))
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Local(format!("cannot read {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CliError::Usage(format!(
            "{shown} is larger than {MAX_FILE_BYTES} bytes: that is not one public key"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage(format!("{shown} is not text: give a .pub file")))?;
    // Never send a private key anywhere, not even to be refused.
    if text.contains("PRIVATE KEY") || text.starts_with("PuTTY-User-Key-File") {
        return Err(CliError::Usage(format!(
            "{shown} holds a private key: register the public half (the .pub file, e.g. \
             ~/.ssh/id_ed25519.pub); nothing was sent"
        )));
    }
    Ok((shown, text.trim().to_owned()))
}

fn add(ctx: &Ctx, file: Option<PathBuf>, person: Option<String>) -> CliResult<()> {
    let file = match file {
        Some(f) => f,
        None => default_file()?,
    };
    let (shown, public_key) = read_key(&file)?;
    let req = NewSshKey {
        public_key,
        person: person.as_deref().map(name).transpose()?,
    };
    let (client, _) = ctx.client()?;
    let k = ctx.block_on(client.add_key(&req))?;
    if ctx.json {
        output::json(&k);
    } else {
        println!(
            "Added {} key {}{} for {} (id {}, from {shown}).",
            k.algorithm,
            k.fingerprint,
            k.comment
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            k.person,
            k.id
        );
        println!(
            "sshd on jit hosts accepts it, from their next refresh, for the shared accounts {} may \
             reserve (only the holder's keys while an account is reserved).",
            k.person
        );
    }
    Ok(())
}

fn rows(keys: &[SshKey]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.person.to_string(),
                k.algorithm.clone(),
                k.fingerprint.clone(),
                or_dash(k.comment.as_deref()),
                utc(k.created_at),
            ]
        })
        .collect()
}

fn list(ctx: &Ctx, person: Option<String>) -> CliResult<()> {
    let person = person.as_deref().map(name).transpose()?;
    let (client, _) = ctx.client()?;
    let keys = ctx.block_on(client.keys(person.as_ref()))?;
    if ctx.json {
        output::json(&keys);
    } else if keys.keys.is_empty() {
        println!("No ssh keys. Add one with: jitctl key add ~/.ssh/id_ed25519.pub");
    } else {
        output::table(
            &["ID", "PERSON", "TYPE", "FINGERPRINT", "COMMENT", "ADDED"],
            &rows(&keys.keys),
        );
    }
    Ok(())
}

fn remove(ctx: &Ctx, key: &str) -> CliResult<()> {
    let key = key.trim();
    let looks_right = key.parse::<i64>().is_ok_and(|n| n > 0)
        || key.strip_prefix("SHA256:").is_some_and(|b| {
            !b.is_empty()
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        });
    if !looks_right {
        return Err(CliError::Usage(format!(
            "{key:?} is neither a key ID nor a fingerprint (SHA256:…); see `jitctl key list`"
        )));
    }
    let (client, _) = ctx.client()?;
    let k = ctx.block_on(client.remove_key(key))?;
    if ctx.json {
        output::json(&k);
    } else {
        println!(
            "Removed {} key {} of {} (id {}). Hosts stop accepting it at their next refresh.",
            k.algorithm, k.fingerprint, k.person, k.id
        );
    }
    Ok(())
}
