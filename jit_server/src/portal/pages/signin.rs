//! Signing in (a passkey, or a TOTP code), signing out, and enrolling with a one-time code.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jit_proto::Secret;
use jit_proto::api::AuditResult;
use serde::Deserialize;

use super::{Form, flash, see_other, session_for, shown, sign_in, with_cookie};
use crate::api::enroll::redeem;
use crate::api::factor;
use crate::error::ApiError;
use crate::login::decision::{CodeVerdict, Failure};
use crate::portal::view::{Layout, render};
use crate::portal::webauthn::{self, Expect};
use crate::portal::{PageError, PageResult, Portal, Visit, qr, session};
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::store::portal::{self as store, SessionRow};
use crate::totp;

/// How long a browser has to answer a passkey request.
pub const CHALLENGE_SECS: i64 = 300;

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    layout: Layout,
}

pub async fn page(State(portal): State<Portal>, visit: Visit) -> PageResult {
    if visit.person.is_some() {
        return Ok(see_other("/portal/"));
    }
    let (s, cookie) = session_for(&portal, &visit).await?;
    shown(&portal, &s).await?;
    let page = LoginPage {
        layout: Layout::anonymous("Sign in", &s.csrf, s.flash.as_deref(), visit.now),
    };
    let r = render(&page);
    Ok(match cookie {
        Some(c) => with_cookie(r, &c),
        None => r,
    })
}

#[derive(Deserialize)]
pub struct TotpForm {
    person: String,
    code: String,
}

/// The answer to a wrong name or code: the same either way, so it tells nobody who exists.
const WRONG: &str =
    "That name or code is not right. Check both, and type the code your app shows now.";

pub async fn totp(
    State(portal): State<Portal>,
    visit: Visit,
    Form(f): Form<TotpForm>,
) -> PageResult {
    let Some(s) = visit.session.clone() else {
        return Err(PageError::SignIn);
    };
    let now = visit.now;
    let app = &portal.app;
    let mut tx = app.store.write().await?;
    let person = persons::by_name(&mut tx, f.person.trim()).await?;
    let Some(person) = person.filter(|p| p.is_active()) else {
        drop(tx);
        return flash(&portal, &s, false, WRONG, "/portal/login").await;
    };
    let Some(sealed) = person.totp_secret.clone() else {
        drop(tx);
        return flash(&portal, &s, false, WRONG, "/portal/login").await;
    };
    let code = Secret::new(f.code.trim().replace(' ', ""));
    let outcome = factor::check(app, &mut tx, &person, &sealed, &code, now).await?;
    let ev = Event::new(
        now,
        format!("person:{}", person.name),
        "portal.signin",
        AuditResult::Ok,
    )
    .person(&person.name)
    .detail(serde_json::json!({ "factor": "totp" }));
    let refusal = match outcome {
        CodeVerdict::Accepted(_) => None,
        CodeVerdict::Wrong(Failure {
            lock_until: None, ..
        }) => Some(WRONG.to_owned()),
        CodeVerdict::Wrong(Failure {
            lock_until: Some(u),
            ..
        })
        | CodeVerdict::LockedOut(u) => Some(format!(
            "Too many wrong codes: try again after {}.",
            crate::rules::utc(u)
        )),
        CodeVerdict::Replayed => {
            Some("That code was used already. Wait for your app to show the next one.".to_owned())
        }
    };
    let mut ev = ev;
    if let Some(why) = &refusal {
        ev.result = AuditResult::Denied;
        ev = ev.reason(why.clone());
    }
    audit::record(&mut tx, &ev).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    if let Some(why) = refusal {
        return flash(&portal, &s, false, &why, "/portal/login").await;
    }
    let (_, cookie) = sign_in(&portal, Some(&s), &person, "totp", now).await?;
    let to = landing(&portal, &person, now).await?;
    Ok(with_cookie(see_other(to), &cookie))
}

/// Where a person lands after signing in: the approval page when a login waits for them (they
/// came from a notification), else their reservations.
async fn landing(portal: &Portal, person: &PersonRow, now: i64) -> PageResult<&'static str> {
    let waiting = crate::api::approvals::pending(&portal.app, person.id, now).await?;
    Ok(if waiting.approvals.is_empty() {
        "/portal/"
    } else {
        "/portal/approve"
    })
}

/// Options for `navigator.credentials.get()`, in the JSON form portal.js turns into the
/// browser's types.
pub async fn passkey_options(
    State(portal): State<Portal>,
    visit: Visit,
) -> PageResult<Json<serde_json::Value>> {
    let s = visit.session.as_ref().ok_or(PageError::SignIn)?;
    let challenge = webauthn::new_challenge();
    let mut tx = portal.app.store.write().await?;
    store::set_challenge(
        &mut tx,
        &s.id_hash,
        Some(&challenge),
        Some("signin"),
        Some(visit.now + CHALLENGE_SECS),
    )
    .await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({
        "challenge": challenge,
        "rpId": visit.origin.host,
        "timeout": CHALLENGE_SECS * 1000,
        "userVerification": "required",
    })))
}

/// The challenge a session holds for a ceremony of `kind`, spent as it is read.
pub async fn take_challenge(
    portal: &Portal,
    s: &SessionRow,
    kind: &str,
    now: i64,
) -> PageResult<String> {
    let mut tx = portal.app.store.write().await?;
    store::set_challenge(&mut tx, &s.id_hash, None, None, None).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    match (
        &s.challenge,
        s.challenge_kind.as_deref(),
        s.challenge_expires_at,
    ) {
        (Some(c), Some(k), Some(until)) if k == kind && until > now => Ok(c.clone()),
        _ => Err(ApiError::bad_request(
            "this passkey request is old or was already answered; try again",
        )
        .into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Assertion {
    id: String,
    client_data_json: String,
    authenticator_data: String,
    signature: String,
}

/// JSON answers to portal.js: where to go next, or what went wrong.
fn json_error(status: axum::http::StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

pub async fn passkey(
    State(portal): State<Portal>,
    visit: Visit,
    Json(a): Json<Assertion>,
) -> PageResult {
    let s = visit.session.clone().ok_or(PageError::SignIn)?;
    let now = visit.now;
    let challenge = take_challenge(&portal, &s, "signin", now).await?;
    let mut tx = portal.app.store.write().await?;
    let refuse = |m: &str| Ok(json_error(axum::http::StatusCode::UNAUTHORIZED, m));
    let Some(key) = store::passkey_by_credential(&mut tx, &a.id).await? else {
        return refuse("This passkey is not registered here (it may have been removed).");
    };
    let Some(person) = persons::by_id(&mut tx, key.person_id)
        .await?
        .filter(PersonRow::is_active)
    else {
        return refuse("This person is disabled.");
    };
    let want = Expect {
        challenge: &challenge,
        origin: &visit.origin.url,
        rp_id: &visit.origin.host,
    };
    let checked = (|| {
        webauthn::verify_assertion(
            &webauthn::b64("clientDataJSON", &a.client_data_json)?,
            &webauthn::b64("authenticatorData", &a.authenticator_data)?,
            &webauthn::b64("signature", &a.signature)?,
            &key.public_key,
            &want,
        )
    })();
    let ev = Event::new(
        now,
        format!("person:{}", person.name),
        "portal.signin",
        AuditResult::Ok,
    )
    .person(&person.name)
    .detail(serde_json::json!({ "factor": "passkey", "passkey": key.name }));
    // Why it is refused, for the person and for the audit log (None: signed in).
    let refusal = match checked {
        Err(e) => Some((e.to_string(), e.to_string())),
        Ok(count) if !store::use_passkey(&mut tx, key.id, i64::from(count), now).await? => Some((
            "This passkey's counter went backwards, as with a copied key; ask an admin.".into(),
            "signature counter went backwards: a copy of the passkey?".into(),
        )),
        Ok(_) => None,
    };
    if let Some((shown, why)) = refusal {
        let mut ev = ev.reason(why);
        ev.result = AuditResult::Denied;
        audit::record(&mut tx, &ev).await?;
        tx.commit().await.map_err(ApiError::internal)?;
        return refuse(&shown);
    }
    audit::record(&mut tx, &ev).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    let (_, cookie) = sign_in(&portal, Some(&s), &person, "passkey", now).await?;
    Ok(with_cookie(
        Json(serde_json::json!({ "redirect": landing(&portal, &person, now).await? }))
            .into_response(),
        &cookie,
    ))
}

pub async fn logout(State(portal): State<Portal>, visit: Visit) -> PageResult {
    if let Some(s) = &visit.session {
        let mut tx = portal.app.store.write().await?;
        store::delete_session(&mut tx, &s.id_hash).await?;
        tx.commit().await.map_err(ApiError::internal)?;
    }
    Ok(with_cookie(
        see_other("/portal/login"),
        &session::clear_cookie(),
    ))
}

// --- enrollment with a one-time code

#[derive(Template)]
#[template(path = "portal/enroll.html")]
struct EnrollPage {
    layout: Layout,
}

pub async fn enroll_page(State(portal): State<Portal>, visit: Visit) -> PageResult {
    let (s, cookie) = session_for(&portal, &visit).await?;
    shown(&portal, &s).await?;
    let page = EnrollPage {
        layout: Layout::anonymous(
            "Set up your sign-in",
            &s.csrf,
            s.flash.as_deref(),
            visit.now,
        ),
    };
    let r = render(&page);
    Ok(match cookie {
        Some(c) => with_cookie(r, &c),
        None => r,
    })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn enroll_code(
    State(portal): State<Portal>,
    visit: Visit,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let s = visit.session.clone().ok_or(PageError::SignIn)?;
    // As on the API: limited per address, and a bad code is refused from a read snapshot,
    // without the write lock.
    let code = Secret::new(f.code.clone());
    let checked = match portal.app.limits.admit_address(
        crate::api::client_addr::current(),
        "enrollment",
        visit.now,
    ) {
        Ok(()) => {
            let mut tx = portal.app.store.read().await?;
            redeem(&mut tx, &code, visit.now).await.map(|_| ())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        return flash(&portal, &s, false, &e.message, "/portal/enroll").await;
    }
    let mut tx = portal.app.store.write().await?;
    match redeem(&mut tx, &code, visit.now).await {
        Ok((hash, _)) => {
            store::set_enroll_code(&mut tx, &s.id_hash, Some(&hash)).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            Ok(see_other("/portal/enroll/setup"))
        }
        Err(e) => {
            drop(tx);
            flash(&portal, &s, false, &e.message, "/portal/enroll").await
        }
    }
}

/// The person a session is enrolling, if its enrollment code is still good.
pub async fn enrolling(
    portal: &Portal,
    s: &SessionRow,
    now: i64,
) -> PageResult<(String, PersonRow)> {
    let hash = s.enroll_code_hash.clone().ok_or_else(|| {
        PageError::Status(
            axum::http::StatusCode::FORBIDDEN,
            "Enter your enrollment code first.".into(),
        )
    })?;
    let mut conn = portal
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let row = persons::enrollment_by_code(&mut conn, &hash)
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > now)
        .ok_or_else(|| {
            ApiError::new(
                jit_proto::api::ErrorCode::Expired,
                "this enrollment code was used or has expired; ask an admin for a new one",
            )
        })?;
    let person = persons::by_id(&mut conn, row.person_id)
        .await?
        .filter(PersonRow::is_active)
        .ok_or_else(|| ApiError::not_allowed("this person is disabled"))?;
    Ok((hash, person))
}

#[derive(Template)]
#[template(path = "portal/enroll_setup.html")]
struct EnrollSetup {
    layout: Layout,
    person: String,
    qr: String,
    secret: String,
    uri: String,
}

/// The authenticator-app link of a person's pending secret, making one if there is none yet (a
/// reload shows the same secret, so an app that already scanned it stays right).
pub async fn pending_uri(portal: &Portal, person: &PersonRow) -> PageResult<(String, String)> {
    let app = &portal.app;
    let secret = match &person.totp_pending {
        Some(sealed) => app
            .key
            .open(sealed, &factor::secret_aad(person.id))
            .map_err(ApiError::internal)?,
        None => {
            let secret = totp::new_secret();
            let sealed = app.key.seal(&secret, &factor::secret_aad(person.id));
            let mut tx = app.store.write().await?;
            persons::set_pending_secret(&mut tx, person.id, &sealed).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            secret
        }
    };
    let uri = totp::otpauth_uri(&secret, &app.settings.issuer, &person.name)
        .ok_or_else(|| ApiError::internal("cannot build otpauth URI"))?;
    let b32 = uri
        .expose()
        .split_once("secret=")
        .map(|(_, r)| r.split('&').next().unwrap_or("").to_owned())
        .unwrap_or_default();
    Ok((uri.expose().to_owned(), b32))
}

pub async fn enroll_setup(State(portal): State<Portal>, visit: Visit) -> PageResult {
    let s = visit.session.clone().ok_or(PageError::SignIn)?;
    let (_, person) = enrolling(&portal, &s, visit.now).await?;
    let (uri, secret) = pending_uri(&portal, &person).await?;
    shown(&portal, &s).await?;
    let page = EnrollSetup {
        layout: Layout::anonymous(
            format!("Set up sign-in for {}", person.name),
            &s.csrf,
            s.flash.as_deref(),
            visit.now,
        ),
        person: person.name.clone(),
        qr: qr::svg(&uri, "QR code for your authenticator app").unwrap_or_default(),
        secret,
        uri,
    };
    Ok(render(&page))
}

pub async fn enroll_totp(
    State(portal): State<Portal>,
    visit: Visit,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let s = visit.session.clone().ok_or(PageError::SignIn)?;
    let now = visit.now;
    let (hash, person) = enrolling(&portal, &s, now).await?;
    let app = &portal.app;
    let mut tx = app.store.write().await?;
    let Some(sealed) = person.totp_pending.clone() else {
        drop(tx);
        return flash(
            &portal,
            &s,
            false,
            "Scan the QR code first.",
            "/portal/enroll/setup",
        )
        .await;
    };
    let code = Secret::new(f.code.trim().replace(' ', ""));
    match factor::check(app, &mut tx, &person, &sealed, &code, now).await? {
        CodeVerdict::Accepted(_) => {}
        _ => {
            let e = Event::new(
                now,
                format!("person:{}", person.name),
                "person.enroll",
                AuditResult::Denied,
            )
            .person(&person.name)
            .reason("wrong confirmation code (portal)");
            audit::record(&mut tx, &e).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            return flash(
                &portal,
                &s,
                false,
                "That code is not right: check your phone's clock, and type the code it shows now.",
                "/portal/enroll/setup",
            )
            .await;
        }
    }
    if !persons::use_enrollment_code(&mut tx, &hash, now).await? {
        return Err(ApiError::new(
            jit_proto::api::ErrorCode::Expired,
            "this enrollment code was already used",
        )
        .into());
    }
    persons::activate_factor(&mut tx, person.id).await?;
    let e = Event::new(
        now,
        format!("person:{}", person.name),
        "person.enroll",
        AuditResult::Ok,
    )
    .person(&person.name)
    .detail(serde_json::json!({ "factor": "totp", "via": "portal" }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    let (new, cookie) = sign_in(&portal, Some(&s), &person, "enrollment", now).await?;
    let r = flash(
        &portal,
        &new,
        true,
        "Your authenticator app is set up. You can add a passkey below, to sign in without codes.",
        "/portal/factors",
    )
    .await?;
    Ok(with_cookie(r, &cookie))
}
