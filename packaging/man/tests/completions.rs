//! The shell completions: every binary has one for bash, zsh and fish that knows its
//! subcommands, and the bash ones work in a real bash (sourced, registered with `complete`, and
//! completing a subcommand and an option).

use std::path::Path;
use std::process::Command;

use jit_man::completions::{self, Completion};

fn by_file<'a>(all: &'a [Completion], file: &str) -> &'a Completion {
    all.iter()
        .find(|c| c.file == Path::new(file))
        .unwrap_or_else(|| panic!("no completion {file}"))
}

#[test]
fn every_binary_has_a_completion_for_each_shell_naming_its_subcommands() {
    let all = completions::completions().unwrap();
    assert_eq!(all.len(), 9);
    for (name, cmd) in [
        ("jitd", jitd::cli::command()),
        ("jit-server", jit_server::cli::command()),
        ("jitctl", jitctl::cli::command()),
    ] {
        for file in [
            format!("bash/{name}"),
            format!("zsh/_{name}"),
            format!("fish/{name}.fish"),
        ] {
            let text = &by_file(&all, &file).text;
            for sub in cmd.get_subcommands() {
                assert!(
                    text.contains(sub.get_name()),
                    "{file} does not complete `{name} {}`",
                    sub.get_name()
                );
            }
        }
        // Each shell's own way of registering the command.
        assert!(
            by_file(&all, &format!("zsh/_{name}"))
                .text
                .starts_with(&format!("#compdef {name}"))
        );
        assert!(
            by_file(&all, &format!("fish/{name}.fish"))
                .text
                .contains(&format!("complete -c {name} "))
        );
    }
}

/// What bash offers after `words` (the last one being completed), with the completion script
/// sourced as bash-completion would: `complete -p NAME` says which function to call.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let name = words[0];
    let program = r#"
        set -e
        . "$1"; shift
        spec=$(complete -p "$1")
        case "$spec" in *" $1") ;; *) echo "not registered for $1: $spec" >&2; exit 1 ;; esac
        fn=$(printf '%s\n' "$spec" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
        [ -n "$fn" ] || { echo "no completion function in: $spec" >&2; exit 1; }
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", program, "bash"])
        .arg(script)
        .args(words)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "bash completion of {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_subcommands_and_options() {
    let dir = tempfile::tempdir().unwrap();
    completions::write_all(dir.path()).unwrap();
    let bash = dir.path().join("bash");
    let cases: [(&str, &[&str], &str); 5] = [
        ("jitctl", &["jitctl", "res"], "reserve"),
        ("jitctl", &["jitctl", "reserve", "admin", "--fo"], "--for"),
        ("jitd", &["jitd", "check"], "check-config"),
        ("jitd", &["jitd", "join", "--con"], "--config"),
        ("jit-server", &["jit-server", "in"], "init"),
    ];
    for (name, words, expected) in cases {
        let offered = bash_complete(&bash.join(name), words);
        assert!(
            offered.iter().any(|o| o == expected),
            "`{}` offered {offered:?}, not {expected}",
            words.join(" ")
        );
        // Only what matches the word typed so far.
        let typed = words[words.len() - 1];
        assert!(offered.iter().all(|o| o.starts_with(typed)), "{offered:?}");
    }
}
