//! What every page shares: the layout (title, navigation, the signed-in person, the CSRF token,
//! a one-time message), rendering, and the error page.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// A message shown once, on the page after a form was sent.
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    /// Stored in the session as `ok:…` or `err:…`.
    pub fn decode(s: &str) -> Flash {
        match s.split_once(':') {
            Some(("ok", t)) => Flash {
                ok: true,
                text: t.to_owned(),
            },
            Some((_, t)) => Flash {
                ok: false,
                text: t.to_owned(),
            },
            None => Flash {
                ok: false,
                text: s.to_owned(),
            },
        }
    }
}

pub struct Layout {
    pub title: String,
    pub person: Option<String>,
    pub csrf: String,
    /// Persons' pages, then (for admins) admins' pages.
    pub nav: Vec<NavItem>,
    pub admin_nav: Vec<NavItem>,
    pub flash: Option<Flash>,
    /// Server time, so the countdown does not trust the browser's clock.
    pub now: i64,
}

/// The persons' pages, in menu order. Each is one line: a page added later (pending approvals,
/// live sessions) is one more.
const PERSON_PAGES: &[(&str, &str)] = &[
    ("/portal/", "Reserve"),
    ("/portal/approve", "Approvals"),
    ("/portal/sessions", "Sessions"),
    ("/portal/factors", "Sign-in methods"),
    ("/portal/keys", "ssh keys"),
];

const ADMIN_PAGES: &[(&str, &str)] = &[
    ("/portal/admin/persons", "Persons"),
    ("/portal/admin/groups", "Groups"),
    ("/portal/admin/accounts", "Accounts"),
    ("/portal/admin/hosts", "Hosts"),
    ("/portal/admin/reservations", "Live reservations"),
    ("/portal/admin/audit", "Audit"),
];

fn items(pages: &[(&'static str, &'static str)], current: &str) -> Vec<NavItem> {
    pages
        .iter()
        .map(|(href, label)| NavItem {
            href,
            label,
            current: *href == current,
        })
        .collect()
}

impl Layout {
    /// A page for a signed-in person; `current` is its path, for the menu.
    pub fn signed(
        title: impl Into<String>,
        current: &str,
        person: &crate::store::persons::PersonRow,
        session: &crate::store::portal::SessionRow,
        now: i64,
    ) -> Layout {
        Layout {
            title: title.into(),
            person: Some(person.name.clone()),
            csrf: session.csrf.clone(),
            nav: items(PERSON_PAGES, current),
            admin_nav: if person.is_admin() {
                items(ADMIN_PAGES, current)
            } else {
                Vec::new()
            },
            flash: session.flash.as_deref().map(Flash::decode),
            now,
        }
    }

    /// A page before sign-in.
    pub fn anonymous(
        title: impl Into<String>,
        csrf: &str,
        flash: Option<&str>,
        now: i64,
    ) -> Layout {
        Layout {
            title: title.into(),
            person: None,
            csrf: csrf.to_owned(),
            nav: Vec::new(),
            admin_nav: Vec::new(),
            flash: flash.map(Flash::decode),
            now,
        }
    }
}

/// Renders a template into a response, or a plain 500 if the template fails.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be drawn",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    message: &'a str,
}

pub fn error_page(code: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::anonymous(title, "", None, 0),
        message,
    };
    (code, render(&page)).into_response()
}
