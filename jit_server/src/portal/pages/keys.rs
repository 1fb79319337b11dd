//! A person's ssh public keys (what sshd on the hosts trusts for them, through jitd): list, add,
//! remove, through the JSON API's own handlers, always as the person themself.

use askama::Template;
use axum::extract::{Path, State};
use jit_proto::api::{NewSshKey, SshKeyQuery};
use serde::Deserialize;

use super::{Form, outcome, shown};
use crate::api::auth::Caller;
use crate::api::{Body, Params, ssh_keys};
use crate::portal::view::{Layout, render};
use crate::portal::{PageResult, Portal, Signed};
use crate::rules::utc;

pub struct KeyView {
    pub id: i64,
    pub algorithm: String,
    pub fingerprint: String,
    pub comment: String,
    pub added: String,
}

#[derive(Template)]
#[template(path = "portal/keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyView>,
}

fn me(s: &Signed) -> Caller {
    // As the person, never as an admin: this page is about one's own keys.
    Caller::Person(s.person.clone())
}

pub async fn page(State(portal): State<Portal>, s: Signed) -> PageResult {
    let list = ssh_keys::list(
        me(&s),
        State(portal.app.clone()),
        Params(SshKeyQuery::default()),
    )
    .await?
    .0;
    shown(&portal, &s.session).await?;
    let page = KeysPage {
        layout: Layout::signed(
            "ssh keys",
            "/portal/keys",
            &s.person,
            &s.session,
            s.visit.now,
        ),
        keys: list
            .keys
            .into_iter()
            .map(|k| KeyView {
                id: k.id,
                algorithm: k.algorithm,
                fingerprint: k.fingerprint,
                comment: k.comment.unwrap_or_default(),
                added: utc(k.created_at),
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct KeyForm {
    public_key: String,
}

pub async fn add(State(portal): State<Portal>, s: Signed, Form(f): Form<KeyForm>) -> PageResult {
    let req = NewSshKey {
        public_key: f.public_key.trim().to_owned(),
        person: None,
    };
    let result = ssh_keys::add(me(&s), State(portal.app.clone()), Body(req)).await;
    outcome(
        &portal,
        &s.session,
        result,
        |k| format!("Added {} key {}.", k.0.algorithm, k.0.fingerprint),
        "/portal/keys",
    )
    .await
}

pub async fn remove(State(portal): State<Portal>, s: Signed, Path(id): Path<i64>) -> PageResult {
    let result = ssh_keys::remove(me(&s), State(portal.app.clone()), Path(id.to_string())).await;
    outcome(
        &portal,
        &s.session,
        result,
        |k| format!("Removed {} key {}.", k.0.algorithm, k.0.fingerprint),
        "/portal/keys",
    )
    .await
}
