//! Who is calling: the admin token, a person token or a host credential, taken from the
//! `Authorization: Bearer …` header and looked up by hash.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jit_proto::api::{CallerKind, WhoAmI};

use super::{State, now};
use crate::error::{ApiError, ApiResult};
use crate::keys::{TokenKind, token_hash};
use crate::store::hosts::{self, HostRow};
use crate::store::persons::{self, PersonRow};

pub enum Caller {
    Admin,
    Person(PersonRow),
    Host(HostRow),
}

impl Caller {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin => "admin".into(),
            Caller::Person(p) => format!("person:{}", p.name),
            Caller::Host(h) => format!("host:{}", h.name),
        }
    }
}

fn bearer(parts: &Parts) -> ApiResult<&str> {
    let missing = || {
        ApiError::unauthorized(
            "this call needs a credential: admins run `jitctl login`, persons run `jitctl enroll`",
        )
    };
    let value = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)
}

impl FromRequestParts<State> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let unknown = || ApiError::unauthorized("unknown or revoked credential");
        let hash = token_hash(token);
        match TokenKind::of(token) {
            Some(TokenKind::Admin) => {
                let mut conn = state
                    .store
                    .pool()
                    .acquire()
                    .await
                    .map_err(ApiError::internal)?;
                if persons::admin_token_valid(&mut conn, &hash).await? {
                    Ok(Caller::Admin)
                } else {
                    Err(unknown())
                }
            }
            Some(TokenKind::Person) => {
                let mut conn = state
                    .store
                    .pool()
                    .acquire()
                    .await
                    .map_err(ApiError::internal)?;
                let person = persons::by_token(&mut conn, &hash)
                    .await?
                    .ok_or_else(unknown)?;
                if !person.is_active() {
                    return Err(ApiError::not_allowed(format!(
                        "person {} is disabled; ask an admin to run `jitctl person enable {}`",
                        person.name, person.name
                    )));
                }
                Ok(Caller::Person(person))
            }
            Some(TokenKind::Host) => {
                let host = {
                    let mut conn = state
                        .store
                        .pool()
                        .acquire()
                        .await
                        .map_err(ApiError::internal)?;
                    hosts::by_credential(&mut conn, &hash)
                        .await?
                        .ok_or_else(unknown)?
                };
                if !host.is_active() {
                    return Err(ApiError::not_allowed(format!(
                        "host {} is disabled; ask an admin to run `jitctl host enable {}`",
                        host.name, host.name
                    )));
                }
                let t = now();
                if host.last_seen.is_none_or(|s| s < t - 60) {
                    let mut tx = state.store.write().await?;
                    hosts::touch(&mut tx, host.id, t).await?;
                    tx.commit().await.map_err(ApiError::internal)?;
                }
                Ok(Caller::Host(host))
            }
            _ => Err(unknown()),
        }
    }
}

/// Only the admin token.
pub struct Admin;

impl FromRequestParts<State> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Admin),
            _ => Err(ApiError::forbidden("this needs the admin token")),
        }
    }
}

/// Only a person token.
pub struct PersonCaller(pub PersonRow);

impl FromRequestParts<State> for PersonCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Person(p) => Ok(PersonCaller(p)),
            Caller::Admin => Err(ApiError::forbidden(
                "the admin token cannot hold reservations: reserve as a person (enroll with `jitctl person add` + `jitctl enroll`)",
            )),
            Caller::Host(_) => Err(ApiError::forbidden("this needs a person token")),
        }
    }
}

/// Only a host credential.
pub struct HostCaller(pub HostRow);

impl FromRequestParts<State> for HostCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Host(h) => Ok(HostCaller(h)),
            _ => Err(ApiError::forbidden(
                "this needs a host credential (jitd join)",
            )),
        }
    }
}

pub async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(match caller {
        Caller::Admin => WhoAmI {
            kind: CallerKind::Admin,
            name: "admin".into(),
        },
        Caller::Person(p) => WhoAmI {
            kind: CallerKind::Person,
            name: p.name,
        },
        Caller::Host(h) => WhoAmI {
            kind: CallerKind::Host,
            name: h.name,
        },
    })
}
