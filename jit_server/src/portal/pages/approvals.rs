//! The approval page: the logins waiting for the signed-in person, each answered by typing the
//! number its prompt shows, or refused as "This was not me". Notifications link here. The
//! answers go through the JSON API's own handlers ([`crate::api::approvals`]), so the rules and
//! audit rows are the same whichever way a person approves.

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::{Form, outcome, shown};
use crate::api::approvals as api;
use crate::error::ApiError;
use crate::portal::view::{Layout, render};
use crate::portal::{PageResult, Portal, Signed};
use crate::rules::{human_secs, utc};

pub struct Waiting {
    pub id: String,
    pub account: String,
    pub host: String,
    pub service: String,
    pub source: String,
    pub when: String,
    pub expires_at: i64,
    pub left: String,
}

#[derive(Template)]
#[template(path = "portal/approvals.html")]
struct ApprovalsPage {
    layout: Layout,
    waiting: Vec<Waiting>,
    /// The page was opened for one login that no longer waits.
    gone: bool,
}

async fn show(portal: &Portal, s: &Signed, only: Option<&str>) -> PageResult {
    let now = s.visit.now;
    let list = api::pending(&portal.app, s.person.id, now).await?;
    let mut waiting: Vec<Waiting> = list
        .approvals
        .into_iter()
        .map(|a| Waiting {
            source: match (&a.rhost, &a.ruser, &a.tty) {
                (Some(r), _, _) => format!("from {r}"),
                (None, Some(u), _) => format!("by {u}"),
                (None, None, Some(t)) => format!("on {t}"),
                _ => String::new(),
            },
            id: a.id,
            account: a.account.to_string(),
            host: a.host.to_string(),
            service: a.service,
            when: utc(a.created_at),
            expires_at: a.expires_at,
            left: human_secs(a.expires_at - now),
        })
        .collect();
    let mut gone = false;
    if let Some(id) = only {
        gone = !waiting.iter().any(|w| w.id == id);
        waiting.retain(|w| w.id == id);
    }
    shown(portal, &s.session).await?;
    let page = ApprovalsPage {
        layout: Layout::signed("Approvals", "/portal/approve", &s.person, &s.session, now),
        waiting,
        gone,
    };
    Ok(render(&page))
}

/// `GET /portal/approve`: every login waiting for me.
pub async fn page(State(portal): State<Portal>, s: Signed) -> PageResult {
    show(&portal, &s, None).await
}

/// `GET /portal/approve/{id}`: the login a notification was about.
pub async fn one(State(portal): State<Portal>, s: Signed, Path(id): Path<String>) -> PageResult {
    show(&portal, &s, Some(&id)).await
}

#[derive(Deserialize)]
pub struct NumberForm {
    number: String,
}

pub async fn approve(
    State(portal): State<Portal>,
    s: Signed,
    Path(id): Path<String>,
    Form(f): Form<NumberForm>,
) -> PageResult {
    let result = match f
        .number
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (10..=99).contains(n))
    {
        Some(n) => {
            api::approve_as(
                &portal.app,
                &id,
                &s.person,
                n,
                &s.visit.origin.url,
                s.visit.now,
            )
            .await
        }
        None => Err(ApiError::bad_request(
            "Type the two digits the login prompt shows.",
        )),
    };
    outcome(
        &portal,
        &s.session,
        result,
        |a| a.message,
        "/portal/approve",
    )
    .await
}

pub async fn report(State(portal): State<Portal>, s: Signed, Path(id): Path<String>) -> PageResult {
    let result = api::report_as(
        &portal.app,
        &id,
        &s.person,
        &s.visit.origin.url,
        s.visit.now,
    )
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |a| a.message,
        "/portal/approve",
    )
    .await
}
