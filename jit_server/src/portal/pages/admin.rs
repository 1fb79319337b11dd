//! Admins' pages: persons, groups, accounts, hosts, live reservations, the audit. Every change
//! goes through the JSON API's own handler, with the signed-in admin as the caller, so the rules,
//! the messages and the audit rows are the same as with jitctl.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jit_proto::api::{
    AccountChange, AdminRole, AuditEvent, AuditQuery, AuditResult, NewAccount, NewGroup, NewHost,
    NewMember, NewPerson, OfflinePolicy, PosixIdentity, ReleaseRequest,
};
use serde::Deserialize;

use super::{Form, minutes, outcome, refused, shown};
use crate::api::auth::{Admin, Caller};
use crate::api::{Body, accounts, groups, hosts, persons, reservations};
use crate::error::ApiError;
use crate::portal::view::{Layout, render};
use crate::portal::{AdminSigned, PageError, PageResult, Portal, Signed};
use crate::rules::{human_secs, utc};
use crate::store::reservations as store_reservations;

fn admin(s: &Signed) -> Admin {
    Admin(s.person.clone())
}

fn st(portal: &Portal) -> State<crate::api::State> {
    State(portal.app.clone())
}

fn layout(s: &Signed, title: &str, path: &str) -> Layout {
    Layout::signed(title, path, &s.person, &s.session, s.visit.now)
}

/// The page that shows a one-time secret (an enrollment code, a join token) once.
#[derive(Template)]
#[template(path = "portal/issued.html")]
struct Issued {
    layout: Layout,
    what: String,
    secret: String,
    until: String,
    then: String,
    back: &'static str,
}

fn api_failed(e: ApiError) -> PageError {
    PageError::Api(e)
}

// --- persons

pub struct PersonView {
    pub name: String,
    pub display_name: String,
    pub admin: bool,
    pub active: bool,
    pub enrolled: bool,
    pub groups: String,
    pub locked: String,
}

#[derive(Template)]
#[template(path = "portal/admin_persons.html")]
struct PersonsPage {
    layout: Layout,
    persons: Vec<PersonView>,
}

pub async fn persons(State(portal): State<Portal>, AdminSigned(s): AdminSigned) -> PageResult {
    let list = persons::list(admin(&s), st(&portal)).await?.0;
    shown(&portal, &s.session).await?;
    let page = PersonsPage {
        layout: layout(&s, "Persons", "/portal/admin/persons"),
        persons: list
            .into_iter()
            .map(|p| PersonView {
                name: p.name.to_string(),
                display_name: p.display_name.unwrap_or_default(),
                admin: p.admin,
                active: p.active,
                enrolled: p.enrolled,
                groups: p
                    .groups
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                locked: p.locked_until.map(utc).unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct PersonForm {
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    admin: Option<String>,
}

fn enrollment_page(
    s: &Signed,
    portal_url: &str,
    e: jit_proto::api::EnrollmentIssued,
    what: &str,
) -> Response {
    render(&Issued {
        layout: layout(s, what, "/portal/admin/persons"),
        what: format!("One-time enrollment code for {}", e.person),
        secret: e.enrollment_code,
        until: utc(e.enrollment_expires_at),
        then: format!(
            "Give it to {} privately. They open {portal_url}/portal/enroll and enter it to set up an \
             authenticator app or a passkey (or run `jitctl enroll CODE`).",
            e.person
        ),
        back: "/portal/admin/persons",
    })
}

pub async fn person_add(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Form(f): Form<PersonForm>,
) -> PageResult {
    let result = async {
        let req = NewPerson {
            name: f.name.trim().parse()?,
            display_name: Some(f.display_name.trim().to_owned()).filter(|d| !d.is_empty()),
            admin: f.admin.is_some(),
        };
        persons::add(admin(&s), st(&portal), Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    match result {
        Ok(e) => Ok(enrollment_page(&s, &s.visit.origin.url, e, "Person added")),
        Err(e) => refused(&portal, &s.session, e, "/portal/admin/persons").await,
    }
}

pub async fn person_action(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Path((name, action)): Path<(String, String)>,
) -> PageResult {
    let back = "/portal/admin/persons";
    let a = || admin(&s);
    let p = || Path(name.clone());
    let done = match action.as_str() {
        "disable" => persons::disable(a(), st(&portal), p())
            .await
            .map(|_| format!("Disabled {name}; their reservations ended.")),
        "enable" => persons::enable(a(), st(&portal), p())
            .await
            .map(|_| format!("Enabled {name}.")),
        "unlock" => persons::unlock(a(), st(&portal), p())
            .await
            .map(|_| format!("Unlocked {name}.")),
        "grant-admin" | "revoke-admin" => {
            let grant = action == "grant-admin";
            persons::set_role(a(), st(&portal), p(), Body(AdminRole { admin: grant }))
                .await
                .map(|_| {
                    if grant {
                        format!("{name} is an admin.")
                    } else {
                        format!("{name} is no longer an admin.")
                    }
                })
        }
        "reset" => {
            return match persons::reset_factor(a(), st(&portal), p()).await {
                Ok(e) => Ok(enrollment_page(
                    &s,
                    &s.visit.origin.url,
                    e.0,
                    "Sign-in methods reset",
                )),
                Err(e) => refused(&portal, &s.session, e, back).await,
            };
        }
        _ => {
            return Err(PageError::Status(
                axum::http::StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    outcome(&portal, &s.session, done, |m| m, back).await
}

// --- groups

pub struct GroupView {
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/admin_groups.html")]
struct GroupsPage {
    layout: Layout,
    groups: Vec<GroupView>,
    persons: Vec<String>,
}

pub async fn groups(State(portal): State<Portal>, AdminSigned(s): AdminSigned) -> PageResult {
    let list = groups::list(admin(&s), st(&portal)).await?.0;
    let people = persons::list(admin(&s), st(&portal)).await?.0;
    shown(&portal, &s.session).await?;
    let page = GroupsPage {
        layout: layout(&s, "Groups", "/portal/admin/groups"),
        groups: list
            .into_iter()
            .map(|g| GroupView {
                name: g.name.to_string(),
                members: g.members.iter().map(|m| m.to_string()).collect(),
            })
            .collect(),
        persons: people.into_iter().map(|p| p.name.to_string()).collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

pub async fn group_add(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Form(f): Form<NameForm>,
) -> PageResult {
    let result = async {
        let req = NewGroup {
            name: f.name.trim().parse()?,
        };
        groups::add(admin(&s), st(&portal), Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |g| format!("Added group {}.", g.name),
        "/portal/admin/groups",
    )
    .await
}

#[derive(Deserialize)]
pub struct MemberForm {
    person: String,
}

pub async fn member_add(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Path(name): Path<String>,
    Form(f): Form<MemberForm>,
) -> PageResult {
    let result = async {
        let req = NewMember {
            person: f.person.trim().parse()?,
        };
        groups::add_member(admin(&s), st(&portal), Path(name.clone()), Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |g| format!("Added {} to {}.", f.person, g.name),
        "/portal/admin/groups",
    )
    .await
}

pub async fn member_remove(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Path((name, person)): Path<(String, String)>,
) -> PageResult {
    let result =
        groups::remove_member(admin(&s), st(&portal), Path((name.clone(), person.clone()))).await;
    outcome(
        &portal,
        &s.session,
        result,
        |_| format!("Removed {person} from {name}."),
        "/portal/admin/groups",
    )
    .await
}

// --- accounts

pub struct AccountView {
    pub name: String,
    pub kind: String,
    pub groups: String,
    pub hosts: String,
    pub ttl: String,
    pub offline: &'static str,
    pub factor: &'static str,
    pub active: bool,
    /// Hosts end a reservation's sessions when it ends.
    pub ends_sessions: bool,
}

#[derive(Template)]
#[template(path = "portal/admin_accounts.html")]
struct AccountsPage {
    layout: Layout,
    accounts: Vec<AccountView>,
}

pub async fn accounts(State(portal): State<Portal>, AdminSigned(s): AdminSigned) -> PageResult {
    let list = accounts::list(admin(&s), st(&portal)).await?.0;
    shown(&portal, &s.session).await?;
    let page = AccountsPage {
        layout: layout(&s, "Shared accounts", "/portal/admin/accounts"),
        accounts: list
            .into_iter()
            .map(|a| {
                let mut hosts = a.host_patterns.clone();
                hosts.extend(a.host_labels.iter().map(|l| format!("label:{l}")));
                AccountView {
                    name: a.name.to_string(),
                    kind: match &a.posix {
                        Some(p) => format!("virtual, uid {}", p.uid),
                        None => "existing".into(),
                    },
                    groups: a
                        .groups
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    hosts: hosts.join(", "),
                    ttl: format!(
                        "{} (at most {})",
                        human_secs(a.default_ttl_secs.into()),
                        human_secs(a.max_ttl_secs.into())
                    ),
                    offline: match a.offline {
                        OfflinePolicy::Deny => "deny",
                        OfflinePolicy::Cached => "cached",
                    },
                    factor: crate::store::accounts::factor_str(a.factor),
                    active: a.active,
                    ends_sessions: a.end_session_at_expiry,
                }
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct AccountForm {
    name: String,
    groups: String,
    #[serde(default)]
    hosts: String,
    #[serde(default)]
    labels: String,
    ttl: String,
    max_ttl: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    gid: String,
    #[serde(default)]
    home: String,
    #[serde(default)]
    shell: String,
    #[serde(default)]
    offline: String,
    #[serde(default)]
    factor: String,
    /// The checkbox: present (`on`) when ticked.
    #[serde(default)]
    end_session: Option<String>,
}

fn list_of(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_names<T: std::str::FromStr<Err = jit_proto::NameError>>(
    s: &str,
) -> Result<Vec<T>, ApiError> {
    list_of(s)
        .iter()
        .map(|x| x.parse::<T>().map_err(ApiError::from))
        .collect()
}

pub async fn account_add(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Form(f): Form<AccountForm>,
) -> PageResult {
    let result = async {
        let posix = if f.uid.trim().is_empty() {
            None
        } else {
            let num = |field: &str, v: &str| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| ApiError::bad_request(format!("{field}: a number")))
            };
            Some(PosixIdentity {
                uid: num("uid", &f.uid)?,
                gid: num("gid", &f.gid)?,
                gecos: String::new(),
                home: f.home.trim().to_owned(),
                shell: f.shell.trim().to_owned(),
                unix_groups: Vec::new(),
            })
        };
        let req = NewAccount {
            name: f.name.trim().parse()?,
            posix,
            groups: parse_names(&f.groups)?,
            default_ttl_secs: Some(minutes("default duration", &f.ttl)?),
            max_ttl_secs: Some(minutes("longest duration", &f.max_ttl)?),
            host_patterns: list_of(&f.hosts),
            host_labels: parse_names(&f.labels)?,
            offline: if f.offline == "cached" {
                OfflinePolicy::Cached
            } else {
                OfflinePolicy::Deny
            },
            factor: match f.factor.as_str() {
                "totp" => jit_proto::api::FactorPolicy::Totp,
                "push" => jit_proto::api::FactorPolicy::Push,
                _ => jit_proto::api::FactorPolicy::Any,
            },
            end_session_at_expiry: f.end_session.is_some(),
        };
        accounts::add(admin(&s), st(&portal), Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |a| format!("Added shared account {}.", a.name),
        "/portal/admin/accounts",
    )
    .await
}

pub async fn account_action(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Path((name, action)): Path<(String, String)>,
) -> PageResult {
    let policy = |end: bool| AccountChange {
        end_session_at_expiry: Some(end),
        ..Default::default()
    };
    let result = match action.as_str() {
        "disable" => accounts::disable(admin(&s), st(&portal), Path(name.clone())).await,
        "enable" => accounts::enable(admin(&s), st(&portal), Path(name.clone())).await,
        "end-sessions" | "keep-sessions" => {
            let change = policy(action == "end-sessions");
            accounts::change(admin(&s), st(&portal), Path(name.clone()), Body(change)).await
        }
        _ => {
            return Err(PageError::Status(
                axum::http::StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    let said = match action.as_str() {
        "end-sessions" => "Sessions of {} now end with their reservation.",
        "keep-sessions" => "Sessions of {} now stay open when their reservation ends.",
        "enable" => "Enabled {}.",
        _ => "Disabled {}.",
    };
    outcome(
        &portal,
        &s.session,
        result,
        |a| said.replace("{}", a.name.as_str()),
        "/portal/admin/accounts",
    )
    .await
}

// --- hosts

pub struct HostView {
    pub name: String,
    pub labels: String,
    pub joined: bool,
    pub active: bool,
    pub last_seen: String,
}

#[derive(Template)]
#[template(path = "portal/admin_hosts.html")]
struct HostsPage {
    layout: Layout,
    hosts: Vec<HostView>,
}

pub async fn hosts(State(portal): State<Portal>, AdminSigned(s): AdminSigned) -> PageResult {
    let list = hosts::list(admin(&s), st(&portal)).await?.0;
    shown(&portal, &s.session).await?;
    let page = HostsPage {
        layout: layout(&s, "Hosts", "/portal/admin/hosts"),
        hosts: list
            .into_iter()
            .map(|h| HostView {
                name: h.name.to_string(),
                labels: h
                    .labels
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                joined: h.joined,
                active: h.active,
                last_seen: h.last_seen.map(utc).unwrap_or_else(|| "never".into()),
            })
            .collect(),
    };
    Ok(render(&page))
}

fn join_page(s: &Signed, c: jit_proto::api::HostCreated) -> Response {
    render(&Issued {
        layout: layout(s, "Join token", "/portal/admin/hosts"),
        what: format!("One-time join token for {}", c.host.name),
        secret: c.join_token,
        until: utc(c.join_expires_at),
        then: format!(
            "On {}, as root: jitd join --token TOKEN (then start jitd).",
            c.host.name
        ),
        back: "/portal/admin/hosts",
    })
}

#[derive(Deserialize)]
pub struct HostForm {
    name: String,
    #[serde(default)]
    labels: String,
}

pub async fn host_add(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Form(f): Form<HostForm>,
) -> PageResult {
    let result = async {
        let req = NewHost {
            name: f.name.trim().parse()?,
            labels: parse_names(&f.labels)?,
        };
        hosts::add(admin(&s), st(&portal), headers, uri, Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    match result {
        Ok(c) => Ok(join_page(&s, c)),
        Err(e) => refused(&portal, &s.session, e, "/portal/admin/hosts").await,
    }
}

pub async fn host_action(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    Path((name, action)): Path<(String, String)>,
) -> PageResult {
    let back = "/portal/admin/hosts";
    let result = match action.as_str() {
        "disable" => hosts::disable(admin(&s), st(&portal), Path(name.clone())).await,
        "enable" => hosts::enable(admin(&s), st(&portal), Path(name.clone())).await,
        "rejoin" => {
            return match hosts::rejoin(admin(&s), st(&portal), headers, uri, Path(name.clone()))
                .await
            {
                Ok(c) => Ok(join_page(&s, c.0)),
                Err(e) => refused(&portal, &s.session, e, back).await,
            };
        }
        _ => {
            return Err(PageError::Status(
                axum::http::StatusCode::NOT_FOUND,
                "No such action.".into(),
            ));
        }
    };
    outcome(
        &portal,
        &s.session,
        result,
        |h| {
            format!(
                "{} host {}.",
                if h.active { "Enabled" } else { "Disabled" },
                h.name
            )
        },
        back,
    )
    .await
}

// --- live reservations

pub struct LiveView {
    pub account: String,
    pub host: String,
    pub person: String,
    pub reason: String,
    pub expires_at: i64,
    pub left: String,
}

#[derive(Template)]
#[template(path = "portal/admin_reservations.html")]
struct LivePage {
    layout: Layout,
    live: Vec<LiveView>,
}

pub async fn reservations(State(portal): State<Portal>, AdminSigned(s): AdminSigned) -> PageResult {
    let now = s.visit.now;
    let mut tx = portal.app.store.read().await?;
    let rows = store_reservations::list(&mut tx, None, false, now).await?;
    drop(tx);
    shown(&portal, &s.session).await?;
    let page = LivePage {
        layout: layout(&s, "Live reservations", "/portal/admin/reservations"),
        live: rows
            .into_iter()
            .map(|r| LiveView {
                left: human_secs(r.expires_at - now),
                account: r.account,
                host: r.host,
                person: r.person,
                reason: r.reason.unwrap_or_default(),
                expires_at: r.expires_at,
            })
            .collect(),
    };
    Ok(render(&page))
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    account: String,
    host: String,
}

pub async fn force_release(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Form(f): Form<ReleaseForm>,
) -> PageResult {
    let result = async {
        let req = ReleaseRequest {
            account: f.account.parse()?,
            host: Some(f.host.parse()?),
        };
        reservations::release(Caller::Admin(s.person.clone()), st(&portal), Body(req))
            .await
            .map(|j| j.0)
    }
    .await;
    outcome(
        &portal,
        &s.session,
        result,
        |r| {
            r.released
                .first()
                .map(|x| {
                    format!(
                        "Released {} on {} (held by {}).",
                        x.account, x.host, x.person
                    )
                })
                .unwrap_or_else(|| "Nothing was released.".into())
        },
        "/portal/admin/reservations",
    )
    .await
}

// --- audit

#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    person: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    format: String,
}

pub struct EventView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub person: String,
    pub account: String,
    pub host: String,
    pub result: &'static str,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "portal/admin_audit.html")]
struct AuditPage {
    layout: Layout,
    person: String,
    account: String,
    host: String,
    since: String,
    until: String,
    query: String,
    events: Vec<EventView>,
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (what date and datetime-local inputs send), in UTC.
pub fn parse_when(field: &str, s: &str) -> Result<Option<i64>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ApiError::bad_request(format!(
            "{field}: write a date as 2026-11-23 or 2026-11-23T10:00 (UTC)"
        ))
    };
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let (h, min) = match t[..] {
        [h, m] | [h, m, _] => (h, m),
        _ => return Err(bad()),
    };
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&h)
        || !(0..60).contains(&min)
    {
        return Err(bad());
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(Some(days * 86_400 + h * 3600 + min * 60))
}

fn opt_name<T: std::str::FromStr<Err = jit_proto::NameError>>(
    s: &str,
) -> Result<Option<T>, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        Ok(None)
    } else {
        Ok(Some(s.parse()?))
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The audit as CSV: one header line, then one line per event, oldest first.
pub fn to_csv(events: &[AuditEvent]) -> String {
    let mut out = String::from("id,time,actor,action,person,account,host,result,reason,detail\n");
    for e in events {
        let cols = [
            e.id.to_string(),
            utc(e.at),
            e.actor.clone(),
            e.action.clone(),
            e.person.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            e.account
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            e.host.as_ref().map(|h| h.to_string()).unwrap_or_default(),
            result_word(e.result).to_owned(),
            e.reason.clone().unwrap_or_default(),
            e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        ];
        out.push_str(
            &cols
                .iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

fn result_word(r: AuditResult) -> &'static str {
    match r {
        AuditResult::Ok => "ok",
        AuditResult::Denied => "denied",
        AuditResult::Error => "error",
    }
}

pub async fn audit(
    State(portal): State<Portal>,
    AdminSigned(s): AdminSigned,
    Query(f): Query<AuditFilter>,
) -> PageResult {
    let q = AuditQuery {
        person: opt_name(&f.person).map_err(api_failed)?,
        account: opt_name(&f.account).map_err(api_failed)?,
        host: opt_name(&f.host).map_err(api_failed)?,
        since: parse_when("since", &f.since).map_err(api_failed)?,
        until: parse_when("until", &f.until).map_err(api_failed)?,
        limit: Some(if f.format.is_empty() {
            200
        } else {
            crate::store::audit::MAX_LIMIT
        }),
        after: None,
    };
    let mut tx = portal.app.store.read().await?;
    let events = crate::store::audit::query(&mut tx, &q).await?;
    drop(tx);
    match f.format.as_str() {
        "csv" => {
            return Ok((
                [
                    (CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        CONTENT_DISPOSITION,
                        "attachment; filename=\"jit-audit.csv\"",
                    ),
                ],
                to_csv(&events),
            )
                .into_response());
        }
        "json" => {
            let body = serde_json::to_string_pretty(&jit_proto::api::AuditEvents { events })
                .map_err(ApiError::internal)?;
            return Ok((
                [
                    (CONTENT_TYPE, "application/json"),
                    (
                        CONTENT_DISPOSITION,
                        "attachment; filename=\"jit-audit.json\"",
                    ),
                ],
                body,
            )
                .into_response());
        }
        "" => {}
        other => {
            return Err(PageError::Status(
                axum::http::StatusCode::BAD_REQUEST,
                format!("format {other:?}: csv or json"),
            ));
        }
    }
    let query = serde_urlencoded::to_string([
        ("person", f.person.trim()),
        ("account", f.account.trim()),
        ("host", f.host.trim()),
        ("since", f.since.trim()),
        ("until", f.until.trim()),
    ])
    .unwrap_or_default();
    shown(&portal, &s.session).await?;
    let page = AuditPage {
        layout: layout(&s, "Audit", "/portal/admin/audit"),
        person: f.person.trim().to_owned(),
        account: f.account.trim().to_owned(),
        host: f.host.trim().to_owned(),
        since: f.since.trim().to_owned(),
        until: f.until.trim().to_owned(),
        query,
        events: events
            .iter()
            .rev()
            .map(|e| EventView {
                at: utc(e.at),
                actor: e.actor.clone(),
                action: e.action.clone(),
                person: e.person.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                account: e
                    .account
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                host: e.host.as_ref().map(|h| h.to_string()).unwrap_or_default(),
                result: result_word(e.result),
                reason: e.reason.clone().unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_the_form() {
        assert_eq!(parse_when("since", "1970-01-02").unwrap(), Some(86_400));
        assert_eq!(
            parse_when("since", "2026-11-23T10:05").unwrap(),
            Some(1_795_428_300)
        );
        assert_eq!(parse_when("since", "").unwrap(), None);
        let err = parse_when("since", "yesterday").unwrap_err().message;
        assert!(err.contains("since") && err.contains("2026-11-23"), "{err}");
        assert!(parse_when("until", "2026-13-01").is_err());
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
