//! A person's main page: what they may reserve (accounts by hosts), their reservations with a
//! live countdown, and reserve, release and extend. The operations are the JSON API's own.

use askama::Template;
use axum::extract::State;
use jit_proto::api::{ExtendRequest, NewReservation, ReleaseRequest};
use serde::Deserialize;

use super::{Form, minutes, outcome, shown};
use crate::api::auth::{Caller, PersonCaller};
use crate::api::{Body, reservations as api};
use crate::error::ApiError;
use crate::portal::view::{Layout, render};
use crate::portal::{PageResult, Portal, Signed};
use crate::rules::{self, human_secs, utc};
use crate::store::{accounts, groups, hosts, reservations};

pub struct Reservable {
    pub account: String,
    pub hosts: Vec<String>,
    pub default_minutes: u32,
    pub max_minutes: u32,
}

pub struct Held {
    pub account: String,
    pub host: String,
    pub reason: String,
    pub expires_at: i64,
    pub expires_utc: String,
    pub left: String,
    pub used: bool,
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    layout: Layout,
    reservable: Vec<Reservable>,
    held: Vec<Held>,
}

pub async fn page(State(portal): State<Portal>, s: Signed) -> PageResult {
    let now = s.visit.now;
    let mut tx = portal.app.store.read().await?;
    let all_hosts = hosts::list(&mut tx).await?;
    let mut reservable = Vec::new();
    for a in accounts::list(&mut tx).await? {
        if !a.is_active() || !groups::person_may_reserve(&mut tx, s.person.id, a.id).await? {
            continue;
        }
        let (patterns, labels) = (a.patterns()?, a.labels()?);
        let mut on = Vec::new();
        for h in all_hosts.iter().filter(|h| h.is_active()) {
            if rules::host_allowed(&h.host_name()?, &h.labels()?, &patterns, &labels) {
                on.push(h.name.clone());
            }
        }
        let (default_ttl, max_ttl) = a.ttls();
        reservable.push(Reservable {
            account: a.name.clone(),
            hosts: on,
            default_minutes: default_ttl.div_ceil(60),
            max_minutes: max_ttl / 60,
        });
    }
    let mut held = Vec::new();
    for r in reservations::list(&mut tx, Some(s.person.id), true, now).await? {
        let live = matches!(r.state.as_str(), "active" | "consumed") && r.expires_at > now;
        if !live {
            continue;
        }
        held.push(Held {
            account: r.account.clone(),
            host: r.host.clone(),
            reason: r.reason.clone().unwrap_or_default(),
            expires_at: r.expires_at,
            expires_utc: utc(r.expires_at),
            left: human_secs(r.expires_at - now),
            used: r.state == "consumed",
        });
    }
    drop(tx);
    shown(&portal, &s.session).await?;
    let page = HomePage {
        layout: Layout::signed(
            "Reserve a shared account",
            "/portal/",
            &s.person,
            &s.session,
            now,
        ),
        reservable,
        held,
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct ReserveForm {
    target: String,
    minutes: String,
    #[serde(default)]
    reason: String,
}

pub async fn reserve(
    State(portal): State<Portal>,
    s: Signed,
    Form(f): Form<ReserveForm>,
) -> PageResult {
    let result = async {
        let (account, host) = f
            .target
            .split_once('@')
            .ok_or_else(|| ApiError::bad_request("choose an account and host"))?;
        let req = NewReservation {
            account: account.parse()?,
            host: host.parse()?,
            duration_secs: Some(minutes("duration", &f.minutes)?),
            reason: Some(f.reason.trim().to_owned()).filter(|r| !r.is_empty()),
        };
        api::reserve(
            PersonCaller(s.person.clone()),
            State(portal.app.clone()),
            Body(req),
        )
        .await
        .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |r| {
            format!(
                "Reserved {} on {} until {}. Log in once within that time, e.g. ssh {}@{}",
                r.account,
                r.host,
                utc(r.expires_at),
                r.account,
                r.host
            )
        },
        "/portal/",
    )
    .await
}

#[derive(Deserialize)]
pub struct HeldForm {
    account: String,
    host: String,
    #[serde(default)]
    minutes: String,
}

pub async fn release(
    State(portal): State<Portal>,
    s: Signed,
    Form(f): Form<HeldForm>,
) -> PageResult {
    let result = async {
        let req = ReleaseRequest {
            account: f.account.parse()?,
            host: Some(f.host.parse()?),
        };
        // As the person, never as an admin: this page releases only one's own.
        api::release(
            Caller::Person(s.person.clone()),
            State(portal.app.clone()),
            Body(req),
        )
        .await
        .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |_| format!("Released {} on {}.", f.account, f.host),
        "/portal/",
    )
    .await
}

pub async fn extend(
    State(portal): State<Portal>,
    s: Signed,
    Form(f): Form<HeldForm>,
) -> PageResult {
    let result = async {
        let req = ExtendRequest {
            account: f.account.parse()?,
            host: Some(f.host.parse()?),
            duration_secs: minutes("extend by", &f.minutes)?,
        };
        api::extend(
            PersonCaller(s.person.clone()),
            State(portal.app.clone()),
            Body(req),
        )
        .await
        .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |e| {
            e.extended
                .first()
                .map(|r| {
                    format!(
                        "{} on {} is yours until {}.",
                        r.account,
                        r.host,
                        utc(r.expires_at)
                    )
                })
                .unwrap_or_else(|| "Nothing was extended.".into())
        },
        "/portal/",
    )
    .await
}
