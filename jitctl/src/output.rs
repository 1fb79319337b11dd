//! Printing: JSON for scripts, aligned text for people.

use serde::Serialize;

use crate::exit::CliError;

/// Prints `value` as one line of JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("jitctl: cannot encode output: {e}"),
    }
}

/// A cell as shown: control and Unicode format characters become `?`, so a hostile reason can
/// neither forge rows nor reorder what the terminal shows.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if jit_proto::text::is_unprintable(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// One row without a table around it (for output that streams), cells separated by a tab.
pub fn line(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| clean(c))
        .collect::<Vec<_>>()
        .join("\t")
}

/// An aligned table with a header row. Cells never contain newlines (control characters are
/// replaced), so a hostile reason cannot forge rows.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Reports an error: on stderr always, and as `{"error": …}` on stdout with `--json`.
pub fn error(e: &CliError, as_json: bool) {
    eprintln!("jitctl: {e}");
    // `audit verify` printed its report (with the broken row) as the JSON answer already.
    if as_json && !matches!(e, CliError::Tampered(_)) {
        let mut body = serde_json::json!({ "code": e.code_name(), "message": e.to_string() });
        if let CliError::Client(jit_client::ClientError::Api { until: Some(u), .. }) = e {
            body["until"] = serde_json::json!(u);
        }
        json(&serde_json::json!({ "error": body, "exit_code": e.exit_code() }));
    }
}

pub fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}
