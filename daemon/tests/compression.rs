//! Response compression through the real router: gzip and zstd bodies
//! decode to the identity bytes, the client's preference wins, small,
//! binary and event-stream bodies go as they are, and conditional requests
//! keep answering 304 (weak ETags on compressed bodies). The REST backend
//! of craton-inventory asking for gzip is in `api_observability.rs`.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use common::{Backend, Harness};
use craton::store::tokens::Role;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The OpenStack-Ansible fixture (16 hosts, 59 KB of script JSON).
fn seeded() -> Harness {
    let h = Harness::new(Backend::Sqlite);
    let path = format!("{}/../tests/data/openstack_inventory.json", env!("CARGO_MANIFEST_DIR"));
    let imported = craton::import::import_path(&path).unwrap();
    craton::store::apply::apply(&mut h.conn(), "default", &imported.desired, false, &|_, _, _| {}).unwrap();
    h
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body with its Content-Encoding undone.
    fn decoded(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.header(header::CONTENT_ENCODING) {
            None => out.clone_from(&self.body),
            Some("gzip") => {
                flate2::read::GzDecoder::new(&self.body[..]).read_to_end(&mut out).unwrap();
            }
            Some("zstd") => out = zstd::stream::decode_all(&self.body[..]).unwrap(),
            Some(other) => panic!("unexpected Content-Encoding {other}"),
        }
        out
    }
}

async fn get(h: &Harness, uri: &str, token: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = Request::builder().uri(uri).header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = h.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Got { status, headers, body }
}

#[tokio::test]
async fn json_and_text_are_gzip_or_zstd_as_the_client_accepts() {
    let h = seeded();
    let t = h.token(Some("default"), Role::Reader);
    for (uri, token) in [
        ("/v1/inventory", &t),
        ("/v1/inventory?pretty=true", &t),
        ("/v1/inventory/hosts/compute1?resolved=true", &t),
        ("/v1/hosts?limit=100", &t),
        ("/v1/groups?limit=100", &t),
        ("/v1/openapi.json", &t),
        ("/ui/app.js", &t),
    ] {
        let plain = get(&h, uri, token, &[]).await;
        assert_eq!(plain.status, StatusCode::OK, "{uri}");
        assert_eq!(plain.header(header::CONTENT_ENCODING), None, "{uri}: identity unless asked");
        assert_eq!(plain.header(header::VARY), Some("accept-encoding"), "{uri}");
        assert!(plain.body.len() > 1024, "{uri}: {} bytes is too small to test", plain.body.len());
        for (accept, want) in [
            ("gzip", "gzip"),
            ("zstd", "zstd"),
            ("gzip, deflate, br, zstd", "zstd"),
            ("gzip;q=1.0, zstd;q=0.5", "gzip"),
            ("br, deflate", "identity"),
            ("gzip;q=0", "identity"),
        ] {
            let got = get(&h, uri, token, &[("accept-encoding", accept)]).await;
            assert_eq!(got.status, StatusCode::OK, "{uri} {accept}");
            assert_eq!(got.header(header::CONTENT_ENCODING).unwrap_or("identity"), want, "{uri} {accept}");
            assert_eq!(got.header(header::CONTENT_TYPE), plain.header(header::CONTENT_TYPE), "{uri} {accept}");
            assert!(got.decoded() == plain.body, "{uri} {accept}: the decoded body differs");
            if want != "identity" {
                assert!(
                    got.body.len() * 3 < plain.body.len(),
                    "{uri} {accept}: {} of {}",
                    got.body.len(),
                    plain.body.len()
                );
            }
        }
    }
    // /metrics changes with every request: it decodes to the text format.
    for enc in ["gzip", "zstd"] {
        let got = get(&h, "/metrics", &t, &[("accept-encoding", enc)]).await;
        assert_eq!(got.header(header::CONTENT_ENCODING), Some(enc), "/metrics");
        let text = String::from_utf8(got.decoded()).unwrap();
        assert!(text.starts_with("# HELP ") && text.contains("http_server_request_duration_seconds_bucket{"), "{text}");
    }
}

#[tokio::test]
async fn small_bodies_bundles_and_errors_go_uncompressed() {
    let h = seeded();
    let t = h.token(Some("default"), Role::Reader);
    let gz = [("accept-encoding", "gzip, zstd")];
    // A small JSON body, and a small error.
    for (uri, status) in [("/healthz", 200), ("/v1/hosts?limit=1", 200), ("/v1/hosts/999999", 404)] {
        let got = get(&h, uri, &t, &gz).await;
        assert_eq!(got.status.as_u16(), status, "{uri}");
        assert!(got.body.len() < 1024, "{uri}: {} bytes", got.body.len());
        assert_eq!(got.header(header::CONTENT_ENCODING), None, "{uri}");
    }
    // Bundles are gzip and zip already: their bytes and strong ETag stay,
    // and If-None-Match still answers 304.
    for uri in ["/v1/inventory.tgz", "/v1/inventory.zip"] {
        let plain = get(&h, uri, &t, &[]).await;
        let got = get(&h, uri, &t, &gz).await;
        assert_eq!(got.header(header::CONTENT_ENCODING), None, "{uri}");
        assert_eq!(got.body, plain.body, "{uri}");
        let etag = got.header(header::ETAG).unwrap().to_string();
        assert!(etag.starts_with('"'), "{uri}: {etag}");
        let again = get(&h, uri, &t, &[gz[0], ("if-none-match", &etag)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(again.header(header::ETAG), Some(etag.as_str()), "{uri}");
        assert!(again.body.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn a_compressed_body_has_a_weak_etag_that_revalidates() {
    let h = seeded();
    let t = h.token(Some("default"), Role::Reader);
    let plain = get(&h, "/ui/app.js", &t, &[]).await;
    let strong = plain.header(header::ETAG).unwrap().to_string();
    assert!(strong.starts_with('"'), "{strong}");
    for enc in ["gzip", "zstd"] {
        let got = get(&h, "/ui/app.js", &t, &[("accept-encoding", enc)]).await;
        assert_eq!(got.header(header::CONTENT_ENCODING), Some(enc));
        let weak = got.header(header::ETAG).unwrap().to_string();
        assert_eq!(weak, format!("W/{strong}"), "{enc}: a compressed body is not byte-identical");
        // The browser sends back what it holds: the weak tag matches.
        let again = get(&h, "/ui/app.js", &t, &[("accept-encoding", enc), ("if-none-match", &weak)]).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{enc}");
        assert_eq!(again.header(header::ETAG), Some(weak.as_str()), "{enc}: the 304 keeps the weak form");
        assert_eq!(again.header(header::VARY), Some("accept-encoding"), "{enc}");
    }
    // An identity client holding the strong tag gets a strong 304.
    let again = get(&h, "/ui/app.js", &t, &[("if-none-match", &strong)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header(header::ETAG), Some(strong.as_str()));
}
