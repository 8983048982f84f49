//! The pool's web pages: `/` (overview) and `/miner/{address}`, plain HTML and scripts
//! embedded in the binary, on top of the shared assets of [`strata_net::web`]. They hold no
//! data (the scripts read the JSON API, with the browser's token) and are served without a
//! token.

use axum::Router;

use strata_net::web::Site;

/// The pages (a miner's page reads the address from the URL) and their scripts, under
/// `/assets/pool/`.
pub const SITE: Site = Site {
    pages: &[
        ("/", include_str!("pages/overview.html")),
        ("/miner/{address}", include_str!("pages/miner.html")),
    ],
    prefix: "pool",
    scripts: &[
        ("overview.js", include_str!("pages/overview.js")),
        ("miner.js", include_str!("pages/miner.js")),
    ],
};

/// The pages, their scripts and the shared assets.
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
