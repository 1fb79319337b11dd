//! The portal's HTTP behaviour with a clock the test moves: the cookie's attributes, the
//! Content-Security-Policy, CSRF and Origin checks, session rotation at sign-in, idle and
//! absolute timeouts, and TOTP sign-in counted with the login factor's replay protection.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use tower::ServiceExt;

use super::{CSP, router_with_clock};
use crate::api::AppState;
use crate::api::factor::secret_aad;
use crate::config::Settings;
use crate::keys::AtRestKey;
use crate::store::{Store, persons};

const HOST: &str = "localhost:8443";
const ORIGIN: &str = "https://localhost:8443";
const T0: i64 = 1_800_000_000;

struct Harness {
    _dir: tempfile::TempDir,
    app: axum::Router,
    clock: Arc<AtomicI64>,
    secret: Vec<u8>,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("jit.db").display());
    let store = Store::open(&url).await.unwrap();
    let key = AtRestKey::generate();
    crate::store::audit::load_chain_key(&store, &key)
        .await
        .unwrap();
    let secret = crate::totp::new_secret().to_vec();
    let mut tx = store.write().await.unwrap();
    let id = persons::insert(&mut tx, "alice", None, T0).await.unwrap();
    persons::set_pending_secret(&mut tx, id, &key.seal(&secret, &secret_aad(id)))
        .await
        .unwrap();
    persons::activate_factor(&mut tx, id).await.unwrap();
    tx.commit().await.unwrap();
    let settings = Settings::default();
    let push = crate::push::Notifier::new(&settings, &key).unwrap();
    let limits = crate::api::rate_limit::Limits::new(&settings.rate_limits);
    let state = Arc::new(AppState {
        store,
        key,
        settings,
        ca_fingerprint: jit_proto::fingerprint::Fingerprint::of_der(b"test"),
        push,
        changes: Default::default(),
        limits,
    });
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let app = router_with_clock(state, Arc::new(move || c.load(Ordering::SeqCst)));
    Harness {
        _dir: dir,
        app,
        clock,
        secret,
    }
}

impl Harness {
    fn at(&self, t: i64) {
        self.clock.store(t, Ordering::SeqCst);
    }

    async fn send(&self, req: Request<Body>) -> (Response<Body>, String) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (Response<Body>, String) {
        let mut b = Request::get(path).header(header::HOST, HOST);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        path: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (Response<Body>, String) {
        let mut b = Request::post(path)
            .header(header::HOST, HOST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        let body = serde_urlencoded::to_string(form).unwrap();
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// A fresh sign-in page: the session cookie (`name=value`) and its CSRF token.
    async fn anonymous(&self) -> (String, String) {
        let (r, html) = self.get("/portal/login", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        (cookie_of(&r), csrf_of(&html))
    }

    fn code(&self, t: i64) -> String {
        crate::totp::code_at(&self.secret, t).unwrap().to_string()
    }

    /// Signs alice in with her code at the clock's time; returns her session cookie.
    async fn sign_in(&self) -> String {
        let (cookie, csrf) = self.anonymous().await;
        let code = self.code(self.clock.load(Ordering::SeqCst));
        let (r, _) = self
            .post(
                "/portal/login/totp",
                Some(&cookie),
                Some(ORIGIN),
                &[("csrf", &csrf), ("person", "alice"), ("code", &code)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/portal/");
        let signed = cookie_of(&r);
        assert_ne!(signed, cookie, "a new session at sign-in");
        signed
    }
}

fn cookie_of(r: &Response<Body>) -> String {
    let set = r
        .headers()
        .get(header::SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn csrf_of(html: &str) -> String {
    let (_, rest) = html
        .split_once("name=\"csrf\" value=\"")
        .expect("csrf field");
    rest.split('"').next().unwrap().to_owned()
}

fn signed_in_as(html: &str) -> bool {
    html.contains("Signed in as <strong>alice</strong>")
}

#[tokio::test]
async fn pages_carry_the_cookie_attributes_and_a_strict_csp_with_no_inline_script() {
    let h = harness().await;
    let (r, html) = h.get("/portal/login", None).await;
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.split("; ").any(|a| a == attr), "{attr}: {set}");
    }
    assert!(set.starts_with("__Host-jit_session="), "{set}");
    let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert_eq!(csp, CSP);
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");
    // Every script is a file; no inline script, handler or style attribute.
    for page in [html.as_str(), &h.get("/portal/enroll", None).await.1] {
        for (i, _) in page.match_indices("<script") {
            assert!(
                page[i..].starts_with("<script src=\"/portal/static/"),
                "{page}"
            );
        }
        assert!(
            !page.contains(" onclick=") && !page.contains(" style="),
            "{page}"
        );
    }
    let (r, js) = h.get("/portal/static/portal.js", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(js.contains("navigator.credentials.create"));
    // Not signed in: every person's page sends the browser to sign in.
    let (r, _) = h.get("/portal/", None).await;
    assert_eq!(r.headers()[header::LOCATION], "/portal/login");
}

#[tokio::test]
async fn every_state_change_needs_the_session_csrf_token_and_our_origin() {
    let h = harness().await;
    let (cookie, csrf) = h.anonymous().await;
    let code = h.code(T0);
    let form = |token: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", token.to_owned()),
            ("person", "alice".into()),
            ("code", code.clone()),
        ]
    };
    let refused = |r: &Response<Body>, html: &str, why: &str| {
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains(why), "{why}: {html}");
    };
    let post =
        |cookie: Option<String>, origin: Option<&'static str>, f: Vec<(&'static str, String)>| {
            let h = &h;
            async move {
                let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
                h.post("/portal/login/totp", cookie.as_deref(), origin, &pairs)
                    .await
            }
        };
    let no_token: Vec<_> = form("").into_iter().filter(|(k, _)| *k != "csrf").collect();
    let (r, html) = post(Some(cookie.clone()), Some(ORIGIN), no_token).await;
    refused(&r, &html, "security token is missing");
    let (r, html) = post(Some(cookie.clone()), Some(ORIGIN), form("wrong")).await;
    refused(&r, &html, "security token is missing");
    let mut good = form("");
    good[0].1 = csrf.clone();
    let (r, html) = post(None, Some(ORIGIN), good.clone()).await;
    refused(&r, &html, "session has ended");
    let (r, html) = post(
        Some(cookie.clone()),
        Some("https://evil.example"),
        good.clone(),
    )
    .await;
    refused(&r, &html, "another web site");
    let (r, html) = post(Some(cookie.clone()), Some("null"), good.clone()).await;
    refused(&r, &html, "another web site");
    // None of those spent the code: with the token it signs in.
    let (r, _) = post(Some(cookie.clone()), Some(ORIGIN), good).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The pre-sign-in session is gone: its id is worth nothing now.
    let (r, _) = h.get("/portal/", Some(&cookie)).await;
    assert_eq!(r.headers()[header::LOCATION], "/portal/login");
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout_and_the_lifetime() {
    let h = harness().await;
    h.at(T0);
    let cookie = h.sign_in().await;
    // Idle timeout 15m: used at 14m59s it lives on, and the next 15m count from then.
    h.at(T0 + 899);
    assert!(signed_in_as(&h.get("/portal/", Some(&cookie)).await.1));
    h.at(T0 + 899 + 899);
    assert!(signed_in_as(&h.get("/portal/", Some(&cookie)).await.1));
    h.at(T0 + 899 + 899 + 900);
    let (r, _) = h.get("/portal/", Some(&cookie)).await;
    assert_eq!(r.headers()[header::LOCATION], "/portal/login");
    // Lifetime 8h: busy every 10 minutes, still signed out at 8h.
    let start = T0 + 10_000;
    h.at(start);
    let cookie = h.sign_in().await;
    let mut t = start;
    while t + 600 < start + 8 * 3600 {
        t += 600;
        h.at(t);
        assert!(
            signed_in_as(&h.get("/portal/", Some(&cookie)).await.1),
            "at {t}"
        );
    }
    h.at(start + 8 * 3600);
    let (r, _) = h.get("/portal/", Some(&cookie)).await;
    assert_eq!(r.headers()[header::LOCATION], "/portal/login");
}

#[tokio::test]
async fn totp_sign_in_refuses_a_replayed_code_and_counts_wrong_ones() {
    let h = harness().await;
    h.at(T0);
    h.sign_in().await;
    // The same code again (same 30 s step): refused as used.
    let (cookie, csrf) = h.anonymous().await;
    let code = h.code(T0);
    let (r, _) = h
        .post(
            "/portal/login/totp",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("person", "alice"), ("code", &code)],
        )
        .await;
    assert_eq!(r.headers()[header::LOCATION], "/portal/login");
    let (_, html) = h.get("/portal/login", Some(&cookie)).await;
    assert!(html.contains("used already"), "{html}");
    // Five wrong codes lock alice out, as at a login; then even the right code is refused.
    for _ in 0..5 {
        h.post(
            "/portal/login/totp",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("person", "alice"), ("code", "000000")],
        )
        .await;
    }
    h.at(T0 + 30);
    let next = h.code(T0 + 30);
    h.post(
        "/portal/login/totp",
        Some(&cookie),
        Some(ORIGIN),
        &[("csrf", &csrf), ("person", "alice"), ("code", &next)],
    )
    .await;
    let (_, html) = h.get("/portal/login", Some(&cookie)).await;
    assert!(html.contains("Too many wrong codes"), "{html}");
    // An unknown name gets the same answer as a wrong code.
    h.post(
        "/portal/login/totp",
        Some(&cookie),
        Some(ORIGIN),
        &[("csrf", &csrf), ("person", "nobody"), ("code", &next)],
    )
    .await;
    let (_, html) = h.get("/portal/login", Some(&cookie)).await;
    assert!(html.contains("That name or code is not right"), "{html}");
}

#[tokio::test]
async fn a_browser_subscribes_to_web_push_only_with_push_on_and_good_keys() {
    let h = harness().await;
    let cookie = h.sign_in().await;
    let (_, html) = h.get("/portal/factors", Some(&cookie)).await;
    let csrf = csrf_of(&html);
    assert!(
        !html.contains("push-subscribe"),
        "no browser button before push is on"
    );
    let subscribe = |endpoint: &str, p256dh: &str| {
        let body = serde_json::json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": { "p256dh": p256dh, "auth": "BTBZMqHH6r4Tts7J_aSIgg" },
        })
        .to_string();
        Request::post("/portal/push/subscribe")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", &csrf)
            .body(Body::from(body))
            .unwrap()
    };
    // RFC 8291's example browser key.
    const P256DH: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    let good = "https://push.example.net/p/abc";
    let (r, body) = h.send(subscribe(good, P256DH)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "{body}");
    assert!(body.contains("Turn push on first"), "{body}");
    let (r, _) = h
        .post(
            "/portal/factors/push",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("ntfy_topic", "jit-alice-7q"),
                ("ntfy_token", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = h.get("/portal/factors", Some(&cookie)).await;
    assert!(
        html.contains("Push is on") && html.contains("jit-alice-7q"),
        "{html}"
    );
    assert!(html.contains("id=\"push-subscribe\""), "{html}");
    for (endpoint, key, why) in [
        ("http://push.example.net/p/abc", P256DH, "https://"),
        ("https://push.example.net/p/a b", P256DH, "https://"),
        (good, "AAAA", "uncompressed P-256"),
    ] {
        let (r, body) = h.send(subscribe(endpoint, key)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{endpoint}: {body}");
        assert!(body.contains(why), "{body}");
    }
    let (r, body) = h.send(subscribe(good, P256DH)).await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let (_, html) = h.get("/portal/factors", Some(&cookie)).await;
    assert!(html.contains("1 browser(s) get notifications"), "{html}");
    // The service worker is a file of the portal, under its CSP like every answer.
    let (r, js) = h.get("/portal/sw.js", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    assert!(js.contains("showNotification") && js.contains("openWindow"));
}
