//! The web page (issue 8): runs and their live progress, served by the
//! daemon itself at `/ui/` so watching a run needs nothing but a browser.
//!
//! Its files are embedded in the binary (no build step, no CDN, no
//! framework), and the page holds no data: it calls the token-protected
//! `/v1` API with the token the user types in, so these routes are public.
//! Every answer carries a strict `Content-Security-Policy` (no inline
//! script, nothing from elsewhere): a token lives in that page's
//! sessionStorage, and any injected markup must not be able to run.
//!
//! The routes are not part of the `/v1` API and not in `api::ROUTES` or the
//! OpenAPI document; `api::app()` merges [`router`] next to the API's own.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::error::ApiError;

/// `default-src 'self'` covers scripts, styles, images and `fetch()`;
/// the rest forbid what `default-src` does not cover.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("assets/index.html") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("assets/app.js") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("assets/app.css") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_bytes!("assets/favicon.svg") },
];

/// The ETag of each asset, in `ASSETS` order: the file names carry no
/// version, so browsers revalidate (`no-cache`) and get a 304 while the
/// binary is the same.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let d = Sha256::digest(a.body);
                let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// `GET /ui` and `/ui/*`; stateless, so it merges into any router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/ui/{asset}", get(|Path(name): Path<String>, headers: HeaderMap| async move { serve(&name, &headers) }))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::NotFound(format!("no such file in the web page: {name}")).into_response();
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    // Compressed assets go with a weak ETag, which the browser sends back.
    let fresh = crate::api::compression::if_none_match(headers, etag);
    let mut resp = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex etag"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_inline_script_or_style_in_the_page() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        // Every <script> has a src, and there are no on* handler attributes
        // or style attributes: the CSP would block them in the browser.
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        assert!(!html.contains("<style"), "inline <style>");
        assert!(!html.contains(" style="), "style attribute");
        assert!(!html.to_ascii_lowercase().contains(" onclick="), "inline handler");
    }
}
