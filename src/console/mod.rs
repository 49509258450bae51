//! The officer console: a static web page served at `/console`, its assets under
//! `/console/assets/{file}`.
//!
//! The page is plain HTML, CSS and JavaScript modules (no build step), embedded in the binary
//! with `include_bytes!`, so a node needs no internet and no files beside it. It holds no data
//! and needs no login: the browser logs in through the public API like any other client and
//! reads everything (alerts, zones, positions, tracks, the live feed) with the officer's token.
//!
//! Invariants: only the files listed in [`ASSETS`] are served, each with its own Content-Type;
//! every reply carries a strict Content-Security-Policy (no inline script, no other origin
//! except the feed's WebSocket), `X-Content-Type-Options: nosniff` and `Cache-Control:
//! no-cache` with a strong ETag, so a new binary's assets are picked up at once while an
//! unchanged asset costs a 304. An unknown asset is the API's JSON 404.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::error::ApiError;

/// The page's security policy: scripts, styles and images from this origin only (images also
/// as `data:` URLs), connections to this origin and its WebSocket, nothing framed or framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; font-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
pub struct Asset {
    /// File name under `/console/assets/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// The page itself.
pub const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Every file served under `/console/assets/`.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("feed.js", JS),
    asset!("alerts.js", JS),
    asset!("map.js", JS),
    asset!("geo.js", JS),
    asset!("track.js", JS),
    asset!("dom.js", JS),
];

/// The console's routes, to be merged into the HTTP router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/assets/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &etags().page, &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.name == file) {
        Some(i) => serve(&ASSETS[i], &etags().assets[i], &headers),
        None => ApiError::NotFound.into_response(),
    }
}

/// Strong ETags of the page and of each asset (in [`ASSETS`] order), computed once.
struct Etags {
    page: HeaderValue,
    assets: Vec<HeaderValue>,
}

fn etags() -> &'static Etags {
    static TAGS: OnceLock<Etags> = OnceLock::new();
    TAGS.get_or_init(|| {
        let tag = |body: &[u8]| {
            let digest = Sha256::digest(body);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        };
        Etags {
            page: tag(INDEX.body),
            assets: ASSETS.iter().map(|a| tag(a.body)).collect(),
        }
    })
}

fn serve(asset: &Asset, etag: &HeaderValue, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag.to_str().unwrap_or(""))
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_a_body() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS[..i].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_attribute() {
        let page = std::str::from_utf8(INDEX.body).unwrap();
        assert!(!page.contains("<script>"), "inline script");
        assert!(!page.contains(" style="), "inline style");
        for handler in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onerror=",
            " onchange=",
        ] {
            assert!(!page.contains(handler), "inline event handler {handler}");
        }
    }
}
