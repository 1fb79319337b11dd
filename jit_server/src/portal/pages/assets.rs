//! The portal's CSS and JS, compiled into the binary.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::portal::PageError;

const CSS: &str = include_str!("../../../static/portal.css");
const JS: &str = include_str!("../../../static/portal.js");

pub async fn file(Path(name): Path<String>) -> Result<Response, PageError> {
    let (body, kind) = match name.as_str() {
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        "portal.js" => (JS, "text/javascript; charset=utf-8"),
        _ => {
            return Err(PageError::Status(
                axum::http::StatusCode::NOT_FOUND,
                "There is no such file.".into(),
            ));
        }
    };
    Ok(([(CONTENT_TYPE, kind), (CACHE_CONTROL, "no-cache")], body).into_response())
}
