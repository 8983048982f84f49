//! The proxy's web pages: `/` (the farm: hashrate chart, miners, upstream pools and their
//! failovers, alerts) and `/miner/{name}` (one worker name: its hashrate chart and figures),
//! plain HTML and scripts embedded in the binary, on top of the shared assets of
//! [`strata_net::web`]. They hold no data (the scripts read the JSON API, with the browser's
//! token) and are served without a token. Miner-provided strings (worker names, user
//! agents) are only ever written as text nodes.

use axum::Router;

use strata_net::web::Site;

/// The pages (a miner's page reads the worker name from the URL) and their scripts, under
/// `/assets/proxy/`.
pub const SITE: Site = Site {
    pages: &[
        ("/", include_str!("pages/overview.html")),
        ("/miner/{name}", include_str!("pages/miner.html")),
    ],
    prefix: "proxy",
    scripts: &[
        ("overview.js", include_str!("pages/overview.js")),
        ("miner.js", include_str!("pages/miner.js")),
    ],
};

/// The pages, their scripts and the shared assets (mount outside the token check).
pub fn router() -> Router {
    SITE.router()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_write_text_only_and_load_only_local_scripts() {
        assert_eq!(SITE.check(), Ok(()));
    }
}
