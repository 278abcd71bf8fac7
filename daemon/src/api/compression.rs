//! Response compression (gzip, zstd: tower-http's encoders) and what it
//! means for conditional requests. A 10,000-host `/v1/inventory` is 4.5 MB
//! of JSON; clients that send `Accept-Encoding` (craton-inventory's REST
//! backend, the collection plugin, Prometheus, browsers) get a fraction of
//! it. Only textual bodies of at least [`MIN_BYTES`] are compressed:
//! bundles (`.tgz`, `.zip`) already are, and Server-Sent Events must reach
//! the client event by event, which an encoder's buffer would hold back.
//!
//! A compressed body is another representation of the resource, so its
//! ETag is made weak (`W/"..."`), as nginx does: a strong tag promises the
//! identical bytes. If-None-Match compares weakly (RFC 9110 13.1.2), so
//! [`if_none_match`] accepts the tag in either form.

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Bodies smaller than this go as they are: the saving would not pay for
/// the encoder's framing and the client's decoding.
pub const MIN_BYTES: u16 = 1024;

/// Media types worth compressing: JSON and text. Everything else (bundles,
/// the event stream, images) is left alone.
const COMPRESSIBLE: [&str; 6] =
    ["application/json", "text/plain", "text/html", "text/css", "text/javascript", "image/svg+xml"];

/// What [`layer`] compresses: see the module documentation; nothing when
/// compression is off.
#[derive(Clone, Copy, Debug)]
pub struct Compressible {
    enabled: bool,
}

impl Predicate for Compressible {
    fn should_compress<B: HttpBody>(&self, response: &Response<B>) -> bool {
        if !self.enabled {
            return false;
        }
        let essence = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        essence.is_some_and(|e| COMPRESSIBLE.contains(&e.as_str()))
            && SizeAbove::new(MIN_BYTES).should_compress(response)
    }
}

/// gzip and zstd, as the client prefers (`Accept-Encoding` q-values), for
/// [`Compressible`] responses; identity otherwise, and always when not
/// `enabled`. tower-http adds `Vary: Accept-Encoding` to every response it
/// could have compressed.
pub fn layer(enabled: bool) -> CompressionLayer<Compressible> {
    CompressionLayer::new().gzip(true).zstd(true).compress_when(Compressible { enabled })
}

fn is_weak(tag: &[u8]) -> bool {
    tag.starts_with(b"W/")
}

/// Weakens the ETag of a compressed response; a 304 answering a weak
/// If-None-Match keeps the weak form the client holds (and the Vary of
/// the compressed response it revalidates). Runs outside [`layer`].
pub async fn weak_etags(req: Request, next: Next) -> axum::response::Response {
    let asked_weak = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|v| v.as_bytes().split(|b| *b == b',').any(|t| is_weak(t.trim_ascii())));
    let mut resp = next.run(req).await;
    let compressed = resp.headers().contains_key(header::CONTENT_ENCODING);
    let revalidated = resp.status() == StatusCode::NOT_MODIFIED && asked_weak;
    if !(compressed || revalidated) {
        return resp;
    }
    let h = resp.headers_mut();
    if let Some(tag) = h.get(header::ETAG).filter(|t| !is_weak(t.as_bytes())) {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(tag.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&weak) {
            h.insert(header::ETAG, v);
        }
    }
    if revalidated && !h.contains_key(header::VARY) {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    resp
}

/// True when the request's If-None-Match names `etag` (weak comparison:
/// `W/"x"` matches `"x"`) or is `*`.
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    let want = etag.strip_prefix("W/").unwrap_or(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(inm: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(inm).unwrap());
        h
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(if_none_match(&headers("\"abc\""), "\"abc\""));
        assert!(if_none_match(&headers("W/\"abc\""), "\"abc\""));
        assert!(if_none_match(&headers("\"x\", W/\"abc\""), "\"abc\""));
        assert!(if_none_match(&headers("*"), "\"abc\""));
        assert!(!if_none_match(&headers("\"abcd\""), "\"abc\""));
        assert!(!if_none_match(&HeaderMap::new(), "\"abc\""));
    }
}
