//! The pool's web pages: `/` (overview) and `/miner/{address}`, plain HTML and scripts
//! embedded in the binary, on top of the shared assets of [`strata_net::web`]. They hold no
//! data (the scripts read the JSON API, with the browser's token) and are served without a
//! token.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use strata_net::web;

/// The overview page.
pub const OVERVIEW_HTML: &str = include_str!("pages/overview.html");
/// A miner's page (the address is read from the URL by its script).
pub const MINER_HTML: &str = include_str!("pages/miner.html");

/// The pages' own scripts, under `/assets/pool/`.
pub const POOL_ASSETS: &[(&str, &str)] = &[
    ("overview.js", include_str!("pages/overview.js")),
    ("miner.js", include_str!("pages/miner.js")),
];

/// The pages, their scripts and the shared assets.
pub fn router() -> Router {
    web::assets_router()
        .route(
            "/",
            get(|h: HeaderMap| async move { web::page(OVERVIEW_HTML, &h) }),
        )
        .route(
            "/miner/{address}",
            get(|h: HeaderMap| async move { web::page(MINER_HTML, &h) }),
        )
        .route("/assets/pool/{name}", get(pool_asset))
}

async fn pool_asset(Path(name): Path<String>, request: HeaderMap) -> Response {
    match POOL_ASSETS.iter().find(|(n, _)| *n == name) {
        Some((n, body)) => web::asset(n, body, &request),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_write_text_only_and_load_only_local_scripts() {
        for (name, body) in POOL_ASSETS {
            assert!(!body.contains("innerHTML"), "{name}");
            assert!(!body.contains("insertAdjacentHTML"), "{name}");
            assert!(!body.contains("document.write"), "{name}");
        }
        for html in [OVERVIEW_HTML, MINER_HTML] {
            // every script is a file of the server's (the pages' policy refuses inline ones)
            for tag in html.split("<script").skip(1) {
                assert!(tag.trim_start().starts_with("src=\"/assets/"), "{tag}");
            }
            assert!(!html.contains("style="), "inline style");
        }
    }
}
