//! Who is calling: a person (with or without the admin role) or a host, from the
//! `Authorization: Bearer …` header, looked up by hash. The one-time bootstrap token is only
//! good for `POST /v1/bootstrap`, which creates a named admin.

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
    /// A person with the admin role.
    Admin(PersonRow),
    Person(PersonRow),
    Host(HostRow),
}

impl Caller {
    /// How the audit log names this caller: always a person or a host.
    pub fn actor(&self) -> String {
        match self {
            Caller::Admin(p) | Caller::Person(p) => format!("person:{}", p.name),
            Caller::Host(h) => format!("host:{}", h.name),
        }
    }

    /// A person (admin or not) from a signed-in portal session, as if they had sent a token.
    pub fn of_person(p: PersonRow) -> Caller {
        if p.is_admin() {
            Caller::Admin(p)
        } else {
            Caller::Person(p)
        }
    }
}

fn bearer(parts: &Parts) -> ApiResult<&str> {
    let missing = || {
        ApiError::unauthorized(
            "this call needs a credential: admins and persons run `jitctl enroll` (the first \
             admin runs `jitctl login` with the token `jit-server init` printed)",
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

/// The person a person token belongs to, if it is live and the person is enabled. Each use
/// moves the token's end forward by `tokens.person_ttl` (written at most once a minute).
pub async fn person_by_token(state: &State, token: &str, now: i64) -> ApiResult<PersonRow> {
    let hash = token_hash(token);
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let (person, last_used) = persons::by_token(&mut conn, &hash, now)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unknown, expired or revoked token: enroll again with a new code from an admin \
                 (`jitctl person reset-factor NAME`)",
            )
        })?;
    drop(conn);
    if !person.is_active() {
        return Err(ApiError::not_allowed(format!(
            "person {} is disabled; ask an admin to run `jitctl person enable {}`",
            person.name, person.name
        )));
    }
    if last_used.is_none_or(|t| t < now - 60) {
        let mut tx = state.store.write().await?;
        let until = now + state.settings.tokens.person_ttl.secs();
        persons::touch_token(&mut tx, &hash, now, until).await?;
        tx.commit_idempotent().await.map_err(ApiError::internal)?;
    }
    Ok(person)
}

impl FromRequestParts<State> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let unknown = || ApiError::unauthorized("unknown or revoked credential");
        match TokenKind::of(token) {
            Some(TokenKind::Admin) => Err(ApiError::unauthorized(
                "that is a one-time bootstrap token: it only creates a named admin, with \
                 `jitctl login --token TOKEN --name NAME`",
            )),
            Some(TokenKind::Person) => Ok(Caller::of_person(
                person_by_token(state, token, now()).await?,
            )),
            Some(TokenKind::Host) => {
                let hash = token_hash(token);
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
                    tx.commit_idempotent().await.map_err(ApiError::internal)?;
                }
                Ok(Caller::Host(host))
            }
            _ => Err(unknown()),
        }
    }
}

/// A one-time bootstrap token, for `POST /v1/bootstrap` only (checked and spent there).
pub struct BootstrapToken(pub String);

impl FromRequestParts<State> for BootstrapToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &State) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        if TokenKind::of(token) != Some(TokenKind::Admin) {
            return Err(ApiError::unauthorized(
                "this needs the one-time bootstrap token that `jit-server init` (or \
                 `jit-server admin-token`) printed",
            ));
        }
        Ok(BootstrapToken(token_hash(token)))
    }
}

/// Only a person with the admin role.
pub struct Admin(pub PersonRow);

impl Admin {
    /// `person:NAME`, for the audit log.
    pub fn actor(&self) -> String {
        format!("person:{}", self.0.name)
    }
}

impl FromRequestParts<State> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin(p) => Ok(Admin(p)),
            _ => Err(ApiError::forbidden(
                "this needs an admin: ask an admin to run `jitctl person grant-admin NAME`",
            )),
        }
    }
}

/// Only a person token (an admin's too: admins are persons).
pub struct PersonCaller(pub PersonRow);

impl FromRequestParts<State> for PersonCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Person(p) | Caller::Admin(p) => Ok(PersonCaller(p)),
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
        Caller::Admin(p) => WhoAmI {
            kind: CallerKind::Admin,
            name: p.name,
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
