//! The proxy's web pages: `/` (the farm: hashrate chart, miners, upstream pools and their
//! failovers, alerts) and `/miner/{name}` (one worker name: its hashrate chart and figures),
//! plain HTML and scripts embedded in the binary, on top of the shared assets of
//! [`strata_net::web`]. They hold no data (the scripts read the JSON API, with the browser's
//! token) and are served without a token. Miner-provided strings (worker names, user
//! agents) are only ever written as text nodes.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use strata_net::web;

/// The farm's page.
pub const OVERVIEW_HTML: &str = include_str!("pages/overview.html");
/// A miner's page (the worker name is read from the URL by its script).
pub const MINER_HTML: &str = include_str!("pages/miner.html");

/// The pages' own scripts, under `/assets/proxy/`.
pub const PROXY_ASSETS: &[(&str, &str)] = &[
    ("overview.js", include_str!("pages/overview.js")),
    ("miner.js", include_str!("pages/miner.js")),
];

/// The pages, their scripts and the shared assets (mount outside the token check).
pub fn router() -> Router {
    web::assets_router()
        .route(
            "/",
            get(|h: HeaderMap| async move { web::page(OVERVIEW_HTML, &h) }),
        )
        .route(
            "/miner/{name}",
            get(|h: HeaderMap| async move { web::page(MINER_HTML, &h) }),
        )
        .route("/assets/proxy/{name}", get(proxy_asset))
}

async fn proxy_asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    match PROXY_ASSETS.iter().find(|(n, _)| *n == name) {
        Some((n, body)) => web::asset(n, body, &request),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn pages_write_text_only_and_load_only_local_scripts() {
        for (name, body) in PROXY_ASSETS {
            assert!(!body.contains("innerHTML"), "{name}");
            assert!(!body.contains("outerHTML"), "{name}");
            assert!(!body.contains("insertAdjacentHTML"), "{name}");
            assert!(!body.contains("document.write"), "{name}");
            assert!(!body.contains("eval("), "{name}");
        }
        for html in [OVERVIEW_HTML, MINER_HTML] {
            // every script is a file of the server's (the pages' policy refuses inline ones)
            for tag in html.split("<script").skip(1) {
                assert!(tag.trim_start().starts_with("src=\"/assets/"), "{tag}");
            }
            assert!(!html.contains("style="), "inline style");
            // no inline handler (`<tag onclick=...>`)
            for tag in html.split('<').skip(1) {
                let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
                let handler = |a: &str| {
                    a.split_once('=').is_some_and(|(name, _)| {
                        name.starts_with("on") && name.chars().all(|c| c.is_ascii_lowercase())
                    })
                };
                assert!(!tag.split_whitespace().skip(1).any(handler), "<{tag}>");
            }
        }
    }

    #[tokio::test]
    async fn each_script_is_served_and_others_are_404() {
        for (name, body) in PROXY_ASSETS {
            let r = proxy_asset(Path((*name).to_owned()), HeaderMap::new()).await;
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "text/javascript; charset=utf-8"
            );
            let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            assert_eq!(bytes, body.as_bytes(), "{name}");
        }
        let r = proxy_asset(Path("../api.rs".to_owned()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
