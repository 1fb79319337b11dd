//! A real HTTP(S) receiver on loopback for notifications (tests/push/receiver.py): it stands in
//! for an ntfy server, a webhook's receiver and a Web Push service, and records every request.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: serde_json::Map<String, Value>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub struct Receiver {
    pub port: u16,
    child: Child,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Plain HTTP on 127.0.0.1.
    pub fn http() -> Receiver {
        Self::spawn(None)
    }

    /// HTTPS with this certificate chain and key (PEM files).
    pub fn https(cert: &Path, key: &Path) -> Receiver {
        Self::spawn(Some((cert, key)))
    }

    fn spawn(tls: Option<(&Path, &Path)>) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("push/receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script);
        if let Some((c, k)) = tls {
            cmd.arg(c).arg(k);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 for the notification receiver");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("receiver's port line");
        let v: Value = serde_json::from_str(&first).expect("port JSON");
        let port = v["port"].as_u64().expect("port") as u16;
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let body = base64::engine::general_purpose::STANDARD
                    .decode(v["body"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                let r = Received {
                    path: v["path"].as_str().unwrap_or("").to_owned(),
                    headers: v["headers"].as_object().cloned().unwrap_or_default(),
                    body,
                };
                sink.lock().unwrap().push(r);
            }
        });
        Receiver { port, child, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for the `n`th request on `path` (1-based) and returns it.
    pub fn nth(&self, path: &str, n: usize) -> Received {
        let mut found = None;
        crate::wait_for(
            &format!("request {n} on {path}"),
            Duration::from_secs(30),
            || {
                let got = self.got.lock().unwrap();
                found = got.iter().filter(|r| r.path == path).nth(n - 1).cloned();
                found.is_some()
            },
        );
        found.expect("found")
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Closing its stdin stops it; kill in case it hangs.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
