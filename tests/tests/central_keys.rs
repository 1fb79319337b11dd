//! Persons' ssh public keys through the real jitctl and the real server: adding, listing and
//! removing them, who may do what, every kind of bad key refused with the reason, fingerprints
//! exactly as `ssh-keygen -l` prints them, and the keys a host is told to trust for each shared
//! account (the holder's only, or every eligible person's).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jit_proto::AccountName;
use jit_proto::api::{HostKeys, LoginBegin, LoginBegun, LoginOrigin};
use jit_tests::{World, client_for, enroll, join_host, runtime};
use serde_json::Value;

/// A key pair made by the real ssh-keygen: the .pub file and its fingerprint as `-l` prints it.
struct KeyPair {
    public: PathBuf,
    private: PathBuf,
    fingerprint: String,
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> KeyPair {
    let private = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", &format!("{name}@test"), "-f"])
        .arg(&private)
        .args(args)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = dir.join(format!("{name}.pub"));
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&public)
        .output()
        .expect("ssh-keygen -l");
    // "256 SHA256:… comment (ED25519)"
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let fingerprint = listed
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("ssh-keygen -l printed {listed:?}"))
        .to_owned();
    KeyPair {
        public,
        private,
        fingerprint,
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn keys_of(v: &Value) -> Vec<(String, String)> {
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["person"].as_str().unwrap().to_owned(),
                k["fingerprint"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn persons_add_list_and_remove_keys_with_ssh_keygen_fingerprints() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let kinds: [(&str, &[&str]); 5] = [
        ("ed", &["-t", "ed25519"]),
        ("p256", &["-t", "ecdsa", "-b", "256"]),
        ("p384", &["-t", "ecdsa", "-b", "384"]),
        ("p521", &["-t", "ecdsa", "-b", "521"]),
        ("rsa", &["-t", "rsa", "-b", "2048"]),
    ];
    let pairs: Vec<KeyPair> = kinds
        .iter()
        .map(|(n, a)| keygen(dir.path(), n, a))
        .collect();
    for (k, (n, _)) in pairs.iter().zip(kinds) {
        let added = w.alice.jitctl.json(&["key", "add", path(&k.public)]);
        assert_eq!(added["fingerprint"], k.fingerprint.as_str(), "{n}");
        assert_eq!(added["person"], "alice");
        assert_eq!(added["comment"], format!("{n}@test"));
    }
    let listed = w.alice.jitctl.json(&["key", "list"]);
    let want: Vec<(String, String)> = pairs
        .iter()
        .map(|k| ("alice".to_owned(), k.fingerprint.clone()))
        .collect();
    assert_eq!(keys_of(&listed), want);
    let algorithms: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(
        algorithms,
        [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "ssh-rsa"
        ]
    );
    // The human list shows the fingerprints too.
    let text = w.alice.jitctl.ok(&["key", "list"]);
    assert!(
        text.contains("FINGERPRINT") && text.contains(&pairs[0].fingerprint),
        "{text}"
    );

    // With no FILE, the usual ~/.ssh key; `-` reads stdin.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    let bob_key = keygen(&home.path().join(".ssh"), "id_ed25519", &["-t", "ed25519"]);
    let out = w
        .bob
        .jitctl
        .command()
        .env("HOME", home.path())
        .args(["key", "add"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&bob_key.fingerprint) && stdout.contains("id_ed25519.pub"),
        "{stdout}"
    );
    let empty_home = tempfile::tempdir().unwrap();
    let out = w
        .bob
        .jitctl
        .command()
        .env("HOME", empty_home.path())
        .args(["key", "add"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ssh-keygen -t ed25519"));
    let bob2 = keygen(dir.path(), "bob2", &["-t", "ed25519"]);
    let mut child = w
        .bob
        .jitctl
        .command()
        .args(["--json", "key", "add", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        &std::fs::read(&bob2.public).unwrap(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fingerprint"], bob2.fingerprint.as_str());

    // One key, one person: again is a conflict, and someone else's key is refused (audited).
    let e = w
        .alice
        .jitctl
        .fails(5, &["key", "add", path(&pairs[0].public)]);
    assert!(e.contains("already registered for alice"), "{e}");
    let e = w
        .bob
        .jitctl
        .fails(5, &["key", "add", path(&pairs[0].public)]);
    assert!(
        e.contains("registered to another person") && !e.contains("alice"),
        "{e}"
    );
    let audit = w.admin.json(&["audit", "--person", "bob"]);
    let denied = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "key.add" && e["result"] == "denied")
        .expect("the refused key is audited");
    assert_eq!(
        denied["detail"]["fingerprint"],
        pairs[0].fingerprint.as_str()
    );
    assert_eq!(denied["detail"]["owner"], "alice");

    // A person removes their own key by fingerprint or by id; someone else's is not theirs.
    let bob_keys = w.bob.jitctl.json(&["key", "list"]);
    let bob_id = bob_keys["keys"][0]["id"].as_i64().unwrap().to_string();
    w.alice.jitctl.fails(4, &["key", "remove", &bob_id]);
    w.alice
        .jitctl
        .fails(4, &["key", "remove", &bob_key.fingerprint]);
    let out = w.alice.jitctl.ok(&["key", "remove", &pairs[4].fingerprint]);
    assert!(
        out.contains("Removed ssh-rsa key") && out.contains(&pairs[4].fingerprint),
        "{out}"
    );
    let alice_ed_id = listed["keys"][0]["id"].as_i64().unwrap().to_string();
    let removed = w.alice.jitctl.json(&["key", "remove", &alice_ed_id]);
    assert_eq!(removed["fingerprint"], pairs[0].fingerprint.as_str());
    w.alice.jitctl.fails(4, &["key", "remove", &alice_ed_id]);
    w.alice.jitctl.fails(2, &["key", "remove", "not-a-key"]);
    assert_eq!(
        keys_of(&w.alice.jitctl.json(&["key", "list"])).len(),
        3,
        "two of five removed"
    );
    let audit = w.admin.json(&["audit", "--person", "alice"]);
    let events = audit["events"].as_array().unwrap();
    for (action, n) in [("key.add", 5), ("key.remove", 2)] {
        let rows: Vec<&Value> = events
            .iter()
            .filter(|e| e["action"] == action && e["result"] == "ok")
            .collect();
        assert_eq!(rows.len(), n, "{action}: {events:?}");
        for r in rows {
            assert_eq!(r["actor"], "person:alice");
            let fp = r["detail"]["fingerprint"].as_str().unwrap();
            assert!(r["reason"].as_str().unwrap().contains(fp), "{r}");
        }
    }

    // Persons manage their own keys only; the admin manages anyone's and must name whose.
    let carol_key = keygen(dir.path(), "carol", &["-t", "ed25519"]);
    let e = w.alice.jitctl.fails(
        3,
        &["key", "add", path(&carol_key.public), "--person", "bob"],
    );
    assert!(e.contains("their own ssh keys"), "{e}");
    w.alice.jitctl.fails(3, &["key", "list", "--person", "bob"]);
    assert_eq!(
        keys_of(&w.alice.jitctl.json(&["key", "list", "--person", "alice"])).len(),
        3
    );
    let e = w.admin.fails(7, &["key", "add", path(&carol_key.public)]);
    assert!(e.contains("--person"), "{e}");
    w.admin.fails(
        4,
        &["key", "add", path(&carol_key.public), "--person", "nobody"],
    );
    let added = w
        .admin
        .json(&["key", "add", path(&carol_key.public), "--person", "bob"]);
    assert_eq!(added["person"], "bob");
    let all = keys_of(&w.admin.json(&["key", "list"]));
    assert_eq!(all.len(), 3 + 3, "{all:?}");
    let bobs = keys_of(&w.admin.json(&["key", "list", "--person", "bob"]));
    assert!(bobs.iter().all(|(p, _)| p == "bob") && bobs.len() == 3);
    let removed = w.admin.json(&["key", "remove", &carol_key.fingerprint]);
    assert_eq!(removed["person"], "bob");
    let audit = w.admin.json(&["audit", "--person", "bob"]);
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "key.remove"
                && e["actor"] == "person:admin"
                && e["detail"]["fingerprint"] == carol_key.fingerprint.as_str()),
        "{audit}"
    );
    // A host credential cannot list persons' keys.
    let rt = runtime();
    let host = join_host(&rt, &w.join_token);
    assert!(rt.block_on(host.keys(None)).is_err());
}

#[test]
fn bad_keys_are_refused_with_the_reason_and_private_keys_never_leave() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let ed = keygen(dir.path(), "ed", &["-t", "ed25519"]);
    let line = std::fs::read_to_string(&ed.public).unwrap();
    let line = line.trim();
    let (kind, rest) = line.split_once(' ').unwrap();
    let (b64, _) = rest.split_once(' ').unwrap();
    let small = keygen(dir.path(), "small", &["-t", "rsa", "-b", "1024"]);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "options",
            format!("from=\"10.0.0.0/8\",no-pty {line}"),
            "options",
        ),
        (
            "dsa",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP8= dsa@old".into(),
            "DSA keys",
        ),
        ("bad base64", format!("{kind} {}!!", &b64[..20]), "base64"),
        (
            "type mismatch",
            format!("ssh-rsa {b64} liar"),
            "says it is ssh-rsa",
        ),
        ("truncated", format!("{kind} {}", &b64[..40]), "damaged"),
        (
            "over-long",
            format!("{line} {}", "x".repeat(9000)),
            "longer than",
        ),
        ("two lines", format!("{line}\n{line}"), "one line"),
        (
            "unknown type",
            format!("ssh-foo {b64}"),
            "unsupported key type",
        ),
        ("empty", " \n".into(), "empty"),
        (
            "rsa 1024",
            std::fs::read_to_string(&small.public).unwrap(),
            "at least 2048 bits",
        ),
    ];
    for (name, text, why) in &cases {
        let f = dir.path().join(format!("{}.pub", name.replace(' ', "-")));
        std::fs::write(&f, text).unwrap();
        let e = w.alice.jitctl.fails(7, &["key", "add", path(&f)]);
        assert!(e.contains(why), "{name}: {e}");
    }
    // The private half is refused before anything is sent.
    let e = w.alice.jitctl.fails(2, &["key", "add", path(&ed.private)]);
    assert!(
        e.contains("private key") && e.contains("nothing was sent"),
        "{e}"
    );
    assert!(
        keys_of(&w.alice.jitctl.json(&["key", "list"])).is_empty(),
        "nothing was stored"
    );
    // The same refusals through the API, with the 400 that says what was wrong.
    let token = std::fs::read_to_string(w.alice.jitctl.dir().join("config.json")).unwrap();
    let token: Value = serde_json::from_str(&token).unwrap();
    let (status, body) = w.server.curl(
        "POST",
        "/v1/keys",
        token["token"].as_str(),
        Some(br#"{"public_key":"ssh-dss AAAA"}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("DSA keys"), "{body}");
}

fn host_view(keys: &HostKeys, account: &str) -> (Option<String>, Vec<(String, String)>) {
    let a = keys
        .accounts
        .iter()
        .find(|a| a.account.as_str() == account)
        .unwrap_or_else(|| panic!("{account} not in {keys:?}"));
    let mut ks: Vec<(String, String)> = a
        .keys
        .iter()
        .map(|k| (k.person.to_string(), k.fingerprint.clone()))
        .collect();
    ks.sort();
    (a.holder.as_ref().map(|h| h.to_string()), ks)
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

#[test]
fn a_host_trusts_the_holders_keys_or_every_eligible_persons() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let web01 = join_host(&rt, &w.join_token);
    let web02 = join_host(
        &rt,
        w.admin.json(&["host", "add", "web02"])["join_token"]
            .as_str()
            .unwrap(),
    );
    // carol may reserve `deploy` only; dave is in ops but will be disabled; erin is in ops but
    // never enrolled; `root` exists on db hosts only.
    let carol = enroll(&w.server, &w.admin, "carol");
    let dave = enroll(&w.server, &w.admin, "dave");
    w.admin.json(&["person", "add", "erin"]);
    w.admin.ok(&["group", "add", "deployers"]);
    w.admin.ok(&["group", "add-member", "deployers", "carol"]);
    for p in ["dave", "erin"] {
        w.admin.ok(&["group", "add-member", "ops", p]);
    }
    for (name, hosts, group) in [("deploy", "web*", "deployers"), ("root", "db*", "ops")] {
        w.admin.ok(&[
            "account",
            "add",
            name,
            "--existing",
            "--group",
            group,
            "--hosts",
            hosts,
        ]);
    }
    let mut fp = std::collections::HashMap::new();
    for (who, jitctl, n) in [
        ("alice", &w.alice.jitctl, 2),
        ("bob", &w.bob.jitctl, 1),
        ("carol", &carol.jitctl, 1),
        ("dave", &dave.jitctl, 1),
    ] {
        for i in 0..n {
            let k = keygen(dir.path(), &format!("{who}{i}"), &["-t", "ed25519"]);
            jitctl.ok(&["key", "add", path(&k.public)]);
            fp.insert(format!("{who}{i}"), (who.to_owned(), k.fingerprint));
        }
    }
    let erin_key = keygen(dir.path(), "erin0", &["-t", "ed25519"]);
    w.admin
        .ok(&["key", "add", path(&erin_key.public), "--person", "erin"]);
    let keys = |names: &[&str]| sorted(names.iter().map(|n| fp[*n].clone()).collect());
    let view = |c: &jit_client::Client| rt.block_on(c.host_keys()).unwrap();

    // Nobody holds admin: every active, enrolled member's keys (not dave's once disabled, never
    // erin's, never carol's); deploy has carol's; root is not on web01 at all.
    let v = view(&web01);
    let names: Vec<&str> = v.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(names, ["admin", "deploy"]);
    assert_eq!(
        host_view(&v, "admin"),
        (None, keys(&["alice0", "alice1", "bob0", "dave0"]))
    );
    assert_eq!(host_view(&v, "deploy"), (None, keys(&["carol0"])));
    w.admin.ok(&["person", "disable", "dave"]);
    assert_eq!(
        host_view(&view(&web01), "admin"),
        (None, keys(&["alice0", "alice1", "bob0"]))
    );

    // alice holds admin on web01: there only her keys count; web02 is unaffected.
    w.alice.jitctl.ok(&["reserve", "admin", "--host", "web01"]);
    assert_eq!(
        host_view(&view(&web01), "admin"),
        (Some("alice".into()), keys(&["alice0", "alice1"]))
    );
    assert_eq!(
        host_view(&view(&web02), "admin"),
        (None, keys(&["alice0", "alice1", "bob0"]))
    );
    // A key removed on the server is gone from the next answer.
    w.alice.jitctl.ok(&["key", "remove", &fp["alice1"].1]);
    assert_eq!(
        host_view(&view(&web01), "admin"),
        (Some("alice".into()), keys(&["alice0"]))
    );

    // A login by key is audited with the key and its owner; another person's key is refused
    // while alice holds the account, without naming her.
    let begin = |key: &str| LoginBegin {
        account: AccountName::new("admin").unwrap(),
        origin: LoginOrigin {
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            ssh_key: Some(key.into()),
            ..Default::default()
        },
    };
    match rt
        .block_on(web01.login_begin(&begin(&fp["bob0"].1)))
        .unwrap()
    {
        LoginBegun::Denied { message, .. } => {
            assert!(!message.contains("alice"), "{message}");
            assert!(message.contains("not reserved for you"), "{message}");
        }
        other => panic!("bob's key while alice holds admin: {other:?}"),
    }
    assert!(matches!(
        rt.block_on(web01.login_begin(&begin(&fp["alice0"].1)))
            .unwrap(),
        LoginBegun::Challenge { .. }
    ));
    let audit = w
        .admin
        .json(&["audit", "--account", "admin", "--host", "web01"]);
    let begun: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login.begin")
        .collect();
    assert_eq!(begun.len(), 2, "{audit}");
    assert_eq!(begun[0]["result"], "denied");
    assert_eq!(begun[0]["detail"]["ssh_key_owner"], "bob");
    assert_eq!(begun[1]["result"], "ok");
    assert_eq!(
        begun[1]["detail"]["origin"]["ssh_key"],
        fp["alice0"].1.as_str()
    );
    assert_eq!(begun[1]["detail"]["ssh_key_owner"], "alice");
    // A fingerprint in any other form is refused.
    let err = rt
        .block_on(web01.login_begin(&begin("MD5:01:02:03")))
        .unwrap_err();
    assert!(err.to_string().contains("ssh_key"), "{err}");

    // Released: everybody eligible again. A disabled person's or account's keys never count.
    w.alice.jitctl.ok(&["release", "admin"]);
    assert_eq!(
        host_view(&view(&web01), "admin"),
        (None, keys(&["alice0", "bob0"]))
    );
    w.admin.ok(&["person", "disable", "bob"]);
    assert_eq!(host_view(&view(&web01), "admin"), (None, keys(&["alice0"])));
    w.admin.ok(&["account", "disable", "admin"]);
    assert_eq!(host_view(&view(&web01), "admin"), (None, vec![]));
    // Persons cannot ask for a host's view.
    let alice_api = client_for(&w.alice.jitctl);
    assert!(rt.block_on(alice_api.host_keys()).is_err());
}
