//! A person's sign-in methods: their authenticator app (set up anew with a QR code) and their
//! passkeys (added, listed, removed).

use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jit_proto::Secret;
use jit_proto::api::AuditResult;
use serde::Deserialize;

use super::signin::{CHALLENGE_SECS, enrolling, pending_uri, take_challenge};
use super::{Form, flash, see_other, shown, sign_in, with_cookie};
use crate::api::factor;
use crate::error::ApiError;
use crate::login::decision::{CodeVerdict, Failure};
use crate::portal::view::{Layout, render};
use crate::portal::webauthn::{self, ALGORITHMS, Expect};
use crate::portal::{PageError, PageResult, Portal, Signed, Visit, qr};
use crate::store::audit::{self, Event};
use crate::store::persons::{self, PersonRow};
use crate::store::portal::{self as store, PasskeyRow};

pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "portal/factors.html")]
struct FactorsPage {
    layout: Layout,
    enrolled: bool,
    passkeys: Vec<PasskeyView>,
    /// Push is enrolled: its ntfy topic and how many browsers are notified.
    push: Option<jit_proto::api::PushFactor>,
    /// This server sends Web Push; browsers subscribe with this VAPID key.
    web_push: bool,
    vapid_key: String,
}

pub async fn page(State(portal): State<Portal>, s: Signed) -> PageResult {
    let mut conn = portal
        .app
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let keys = store::passkeys_of(&mut conn, s.person.id).await?;
    let factors = crate::api::factors::of(&mut conn, &s.person).await?;
    drop(conn);
    shown(&portal, &s.session).await?;
    let page = FactorsPage {
        layout: Layout::signed(
            "Sign-in methods",
            "/portal/factors",
            &s.person,
            &s.session,
            s.visit.now,
        ),
        enrolled: s.person.is_enrolled(),
        passkeys: keys.iter().map(view).collect(),
        push: factors.push,
        web_push: portal.app.settings.push.web_push,
        vapid_key: portal.app.push.vapid_public_key(),
    };
    Ok(render(&page))
}

fn view(k: &PasskeyRow) -> PasskeyView {
    PasskeyView {
        id: k.id,
        name: k.name.clone(),
        created: crate::rules::utc(k.created_at),
        last_used: k
            .last_used_at
            .map(crate::rules::utc)
            .unwrap_or_else(|| "never".into()),
    }
}

#[derive(Template)]
#[template(path = "portal/totp_setup.html")]
struct TotpSetup {
    layout: Layout,
    qr: String,
    secret: String,
    uri: String,
}

/// Starts a new authenticator-app secret (the current one keeps working until the new one is
/// confirmed).
pub async fn totp_start(State(portal): State<Portal>, s: Signed) -> PageResult {
    let mut tx = portal.app.store.write().await?;
    persons::clear_pending_secret(&mut tx, s.person.id).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(see_other("/portal/factors/totp"))
}

pub async fn totp_page(State(portal): State<Portal>, s: Signed) -> PageResult {
    let (uri, secret) = pending_uri(&portal, &s.person).await?;
    shown(&portal, &s.session).await?;
    let page = TotpSetup {
        layout: Layout::signed(
            "New authenticator app",
            "/portal/factors",
            &s.person,
            &s.session,
            s.visit.now,
        ),
        qr: qr::svg(&uri, "QR code for your authenticator app").unwrap_or_default(),
        secret,
        uri,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn totp_confirm(
    State(portal): State<Portal>,
    s: Signed,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let now = s.visit.now;
    let app = &portal.app;
    let mut tx = app.store.write().await?;
    let person = persons::by_id(&mut tx, s.person.id)
        .await?
        .ok_or(PageError::SignIn)?;
    let Some(sealed) = person.totp_pending.clone() else {
        drop(tx);
        return flash(
            &portal,
            &s.session,
            false,
            "Start again: the new secret is gone.",
            "/portal/factors",
        )
        .await;
    };
    let code = Secret::new(f.code.trim().replace(' ', ""));
    let outcome = factor::check(app, &mut tx, &person, &sealed, &code, now).await?;
    let actor = format!("person:{}", person.name);
    if !matches!(outcome, CodeVerdict::Accepted(_)) {
        let e = Event::new(now, actor, "person.totp_reset", AuditResult::Denied)
            .person(&person.name)
            .reason("wrong confirmation code");
        audit::record(&mut tx, &e).await?;
        tx.commit().await.map_err(ApiError::internal)?;
        let msg = match outcome {
            CodeVerdict::LockedOut(u)
            | CodeVerdict::Wrong(Failure {
                lock_until: Some(u),
                ..
            }) => {
                format!(
                    "Too many wrong codes: try again after {}.",
                    crate::rules::utc(u)
                )
            }
            _ => {
                "That code is not right: type the code the new entry in your app shows now.".into()
            }
        };
        return flash(&portal, &s.session, false, &msg, "/portal/factors/totp").await;
    }
    persons::activate_factor(&mut tx, person.id).await?;
    let e = Event::new(now, actor, "person.totp_reset", AuditResult::Ok).person(&person.name);
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    flash(
        &portal,
        &s.session,
        true,
        "Your new authenticator app is set up; codes from the old entry no longer work.",
        "/portal/factors",
    )
    .await
}

/// Who is registering a passkey: a signed-in person, or one enrolling with a code.
async fn registrant(portal: &Portal, visit: &Visit) -> PageResult<(PersonRow, bool)> {
    let s = visit.session.as_ref().ok_or(PageError::SignIn)?;
    if let Some(p) = &visit.person {
        return Ok((p.clone(), false));
    }
    let (_, p) = enrolling(portal, s, visit.now).await?;
    Ok((p, true))
}

/// Options for `navigator.credentials.create()`.
pub async fn passkey_options(
    State(portal): State<Portal>,
    visit: Visit,
) -> PageResult<Json<serde_json::Value>> {
    let (person, _) = registrant(&portal, &visit).await?;
    let s = visit.session.as_ref().ok_or(PageError::SignIn)?;
    let challenge = webauthn::new_challenge();
    let mut tx = portal.app.store.write().await?;
    store::set_challenge(
        &mut tx,
        &s.id_hash,
        Some(&challenge),
        Some("register"),
        Some(visit.now + CHALLENGE_SECS),
    )
    .await?;
    let existing = store::passkeys_of(&mut tx, person.id).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({
        "challenge": challenge,
        "rp": { "id": visit.origin.host, "name": portal.app.settings.issuer },
        // The user handle is the person's id: stable, and not their name.
        "user": {
            "id": base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, person.id.to_be_bytes()),
            "name": person.name,
            "displayName": person.display_name.clone().unwrap_or_else(|| person.name.clone()),
        },
        "pubKeyCredParams": ALGORITHMS.iter().map(|a| serde_json::json!({"type": "public-key", "alg": a})).collect::<Vec<_>>(),
        "excludeCredentials": existing.iter().map(|k| serde_json::json!({"type": "public-key", "id": k.credential_id})).collect::<Vec<_>>(),
        "authenticatorSelection": { "residentKey": "required", "userVerification": "required" },
        "attestation": "none",
        "timeout": CHALLENGE_SECS * 1000,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Registration {
    client_data_json: String,
    attestation_object: String,
    name: String,
}

pub async fn passkey_register(
    State(portal): State<Portal>,
    visit: Visit,
    Json(r): Json<Registration>,
) -> PageResult {
    let (person, enrolling_now) = registrant(&portal, &visit).await?;
    let s = visit.session.clone().ok_or(PageError::SignIn)?;
    let now = visit.now;
    let challenge = take_challenge(&portal, &s, "register", now).await?;
    let name = r.name.trim();
    let name = if name.is_empty() { "passkey" } else { name };
    if name.chars().count() > 64 || name.chars().any(jit_proto::text::is_unprintable) {
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "name the passkey in at most 64 characters"})),
        )
            .into_response());
    }
    let want = Expect {
        challenge: &challenge,
        origin: &visit.origin.url,
        rp_id: &visit.origin.host,
    };
    let checked = (|| {
        webauthn::verify_registration(
            &webauthn::b64("clientDataJSON", &r.client_data_json)?,
            &webauthn::b64("attestationObject", &r.attestation_object)?,
            &want,
        )
    })();
    let new = match checked {
        Ok(n) => n,
        Err(e) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response());
        }
    };
    let mut tx = portal.app.store.write().await?;
    if enrolling_now {
        let (hash, _) = enrolling(&portal, &s, now).await?;
        if !persons::use_enrollment_code(&mut tx, &hash, now).await? {
            return Err(ApiError::bad_request("this enrollment code was already used").into());
        }
    }
    let row = PasskeyRow {
        id: 0,
        person_id: person.id,
        credential_id: new.credential_id.clone(),
        public_key: new.public_key,
        algorithm: new.algorithm,
        sign_count: i64::from(new.sign_count),
        name: name.to_owned(),
        created_at: now,
        last_used_at: None,
    };
    if let Err(e) = store::insert_passkey(&mut tx, &row).await {
        if crate::store::is_unique_violation(&e) {
            return Ok((
                StatusCode::CONFLICT,
                Json(serde_json::json!({"error": "this passkey is registered already"})),
            )
                .into_response());
        }
        return Err(ApiError::internal(e).into());
    }
    let e = Event::new(now, format!("person:{}", person.name), "person.passkey_add", AuditResult::Ok)
        .person(&person.name)
        .detail(serde_json::json!({ "passkey": name, "algorithm": new.algorithm, "via": if enrolling_now { "enrollment code" } else { "signed in" } }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    let done = Json(serde_json::json!({ "redirect": "/portal/factors" })).into_response();
    if enrolling_now {
        let (new_s, cookie) = sign_in(&portal, Some(&s), &person, "passkey", now).await?;
        let mut tx = portal.app.store.write().await?;
        store::set_flash(&mut tx, &new_s.id_hash, Some("ok:Your passkey is registered and you are signed in. Set up an authenticator app too: logins to shared accounts ask for its codes.")).await?;
        tx.commit().await.map_err(ApiError::internal)?;
        return Ok(with_cookie(done, &cookie));
    }
    let mut tx = portal.app.store.write().await?;
    store::set_flash(
        &mut tx,
        &s.id_hash,
        Some(&format!("ok:Passkey \"{name}\" added.")),
    )
    .await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(done)
}

pub async fn passkey_delete(
    State(portal): State<Portal>,
    s: Signed,
    Path(id): Path<i64>,
) -> PageResult {
    let mut tx = portal.app.store.write().await?;
    let Some(name) = store::delete_passkey(&mut tx, s.person.id, id).await? else {
        drop(tx);
        return flash(
            &portal,
            &s.session,
            false,
            "No such passkey.",
            "/portal/factors",
        )
        .await;
    };
    let e = Event::new(
        s.visit.now,
        format!("person:{}", s.person.name),
        "person.passkey_remove",
        AuditResult::Ok,
    )
    .person(&s.person.name)
    .detail(serde_json::json!({ "passkey": name }));
    audit::record(&mut tx, &e).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    flash(
        &portal,
        &s.session,
        true,
        &format!("Passkey \"{name}\" removed."),
        "/portal/factors",
    )
    .await
}
