//! Web pages of a server's HTTP API (pool and proxy alike): the shared static assets, embedded
//! in the binary (no build step, no CDN), and the responses that serve them and a page.
//!
//! [`assets_router`] serves, under `/assets/` (and [`Site`] a server's own pages and
//! scripts on top of them):
//!
//! * `strata.css`: the one stylesheet;
//! * `api.js` (`StrataApi`): the JSON API from the browser with the bearer token (taken from a
//!   `#token=...` URL fragment, kept in `localStorage`, a token form on a 401), DOM building
//!   with text nodes only (no `innerHTML`), number and time formats;
//! * `chart.js` (`StrataChart.line(container, [{name, points: [{t, value}]}], opts)`): an SVG
//!   line chart;
//! * `table.js` (`StrataTable.sortable(table)`): tables sorted by the clicked column, numbers
//!   as numbers (a cell's `data-sort` overrides its text).
//!
//! Pages and assets hold no data and are served without a token (mount them outside
//! [`ApiAuth::protect`](crate::http_auth::ApiAuth::protect)); their data comes from the JSON
//! API, which keeps requiring it. [`page`] and [`asset`] add the headers: content type, a
//! strong `ETag` (a `304` for a matching `If-None-Match`), `Cache-Control`, and for pages a
//! `Content-Security-Policy` that allows scripts, styles and requests only from the server
//! itself (no inline script).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

mod site;

pub use site::{script, Site};

/// The shared assets: (file name under `/assets/`, content).
pub const ASSETS: &[(&str, &str)] = &[
    ("strata.css", include_str!("style.css")),
    ("api.js", include_str!("api.js")),
    ("chart.js", include_str!("chart.js")),
    ("table.js", include_str!("table.js")),
];

/// How long a browser may use an asset without asking again (seconds); after that it
/// revalidates with its `ETag` (a new build's assets have another one).
pub const ASSET_MAX_AGE_SECS: u32 = 300;

/// The `Content-Security-Policy` of every page: everything from the server itself, nothing
/// inline, no frames.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The content type of a file by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// `body` served as the file `name` (content type by extension), with its `ETag`, cacheable
/// for [`ASSET_MAX_AGE_SECS`]; `304 Not Modified` when `request` already holds it.
pub fn asset(name: &str, body: &'static str, request: &HeaderMap) -> Response {
    respond(
        body,
        content_type(name),
        &format!("public, max-age={ASSET_MAX_AGE_SECS}"),
        request,
        false,
    )
}

/// An HTML page: revalidated at every load (`no-cache`, with its `ETag`), under
/// [`PAGE_CSP`].
pub fn page(html: &'static str, request: &HeaderMap) -> Response {
    respond(html, content_type("page.html"), "no-cache", request, true)
}

fn respond(
    body: &'static str,
    content_type: &'static str,
    cache: &str,
    request: &HeaderMap,
    is_page: bool,
) -> Response {
    let tag = etag(body);
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == tag || v.trim() == "*");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        headers.insert(header::CACHE_CONTROL, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if is_page {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (headers, body).into_response()
}

/// The shared assets ([`ASSETS`]) under `/assets/{name}`; `404` for any other name. Mount it
/// beside the API's routes, outside the token check.
pub fn assets_router() -> Router {
    Router::new().route("/assets/{name}", get(serve_asset))
}

async fn serve_asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    match ASSETS.iter().find(|(n, _)| *n == name) {
        Some((n, body)) => asset(n, body, &request),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("strata.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn assets_carry_their_etag_and_a_matching_request_gets_304() {
        let (name, body) = ASSETS[1];
        let first = asset(name, body, &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let h = first.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=300");
        let tag = h[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag.clone());
        let second = asset(name, body, &again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::ETAG], tag);
        let mut other = HeaderMap::new();
        other.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"abc\""));
        assert_eq!(asset(name, body, &other).status(), StatusCode::OK);
    }

    #[test]
    fn pages_are_revalidated_under_the_policy() {
        let r = page("<!doctype html><title>t</title>", &HeaderMap::new());
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(r.headers()[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
    }

    #[test]
    fn the_assets_build_no_markup_from_strings() {
        for (name, body) in ASSETS {
            assert!(!body.contains("innerHTML"), "{name} uses innerHTML");
            assert!(!body.contains("outerHTML"), "{name} uses outerHTML");
            assert!(!body.contains("insertAdjacentHTML"), "{name}");
            // nothing from elsewhere: the only URL is the SVG namespace
            let urls = body.matches("http://").count() + body.matches("https://").count();
            let namespace = body.matches("http://www.w3.org/2000/svg").count();
            assert_eq!(urls, namespace, "{name} names another site");
        }
    }

    #[tokio::test]
    async fn the_router_serves_each_asset_and_404s_the_rest() {
        for (name, body) in ASSETS {
            let r = serve_asset(Path((*name).to_owned()), HeaderMap::new()).await;
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], content_type(name));
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            assert_eq!(bytes, body.as_bytes(), "{name}");
        }
        let r = serve_asset(Path("../Cargo.toml".to_owned()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
