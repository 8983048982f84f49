//! A server's own pages on top of the shared assets: which page is served where, its own
//! scripts under `/assets/{prefix}/`, and the check that they keep to the pages' policy.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{asset, assets_router, page};

/// A server's pages (the pool's, the proxy's).
#[derive(Debug, Clone, Copy)]
pub struct Site {
    /// `(route, html)`: each page and where it is served (axum's route syntax, e.g.
    /// `/miner/{name}`; the page's script reads the URL).
    pub pages: &'static [(&'static str, &'static str)],
    /// The site's scripts are served under `/assets/{prefix}/`.
    pub prefix: &'static str,
    /// `(file name, content)` of the site's own scripts.
    pub scripts: &'static [(&'static str, &'static str)],
}

impl Site {
    /// The pages, the site's scripts and the shared assets, all without a token (mount the
    /// router outside [`ApiAuth::protect`](crate::http_auth::ApiAuth::protect)).
    pub fn router(self) -> Router {
        let mut router = assets_router();
        for &(route, html) in self.pages {
            router = router.route(
                route,
                get(move |h: HeaderMap| async move { page(html, &h) }),
            );
        }
        let scripts = self.scripts;
        router.route(
            &format!("/assets/{}/{{name}}", self.prefix),
            get(move |Path(name): Path<String>, h: HeaderMap| async move {
                script(scripts, &name, &h)
            }),
        )
    }

    /// Whether the pages keep to their policy: scripts build the DOM from text only (no
    /// `innerHTML` and the like, no `eval`), pages load only the server's own scripts and
    /// carry no inline style or event handler. The first breach, described.
    pub fn check(&self) -> Result<(), String> {
        const WRITES_HTML: [&str; 5] = [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ];
        for (name, body) in self.scripts {
            if let Some(bad) = WRITES_HTML.iter().find(|w| body.contains(*w)) {
                return Err(format!("{name} uses {bad}"));
            }
        }
        for (route, html) in self.pages {
            for tag in html.split("<script").skip(1) {
                if !tag.trim_start().starts_with("src=\"/assets/") {
                    return Err(format!("{route}: a script not from /assets/: <script{tag}"));
                }
            }
            if html.contains("style=") {
                return Err(format!("{route}: an inline style"));
            }
            for tag in html.split('<').skip(1) {
                let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
                let handler = |a: &str| {
                    a.split_once('=').is_some_and(|(name, _)| {
                        name.starts_with("on") && name.chars().all(|c| c.is_ascii_lowercase())
                    })
                };
                if tag.split_whitespace().skip(1).any(handler) {
                    return Err(format!("{route}: an inline handler in <{tag}>"));
                }
            }
        }
        Ok(())
    }
}

/// Script `name` of `scripts` (as [`asset`] serves it), or `404`.
pub fn script(scripts: &[(&str, &'static str)], name: &str, request: &HeaderMap) -> Response {
    match scripts.iter().find(|(n, _)| *n == name) {
        Some((n, body)) => asset(n, body, request),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    const SITE: Site = Site {
        pages: &[(
            "/",
            "<html><body><p title=\"configuration\">x</p><script src=\"/assets/t/a.js\"></script></body></html>",
        )],
        prefix: "t",
        scripts: &[("a.js", "StrataApi.text(el, name);")],
    };

    #[test]
    fn the_policy_is_checked() {
        assert_eq!(SITE.check(), Ok(()));
        let script = Site {
            scripts: &[("b.js", "el.innerHTML = name;")],
            ..SITE
        };
        assert_eq!(script.check(), Err("b.js uses innerHTML".into()));
        let inline = Site {
            pages: &[("/x", "<body><script>alert(1)</script></body>")],
            ..SITE
        };
        assert!(inline.check().unwrap_err().contains("not from /assets/"));
        let handler = Site {
            pages: &[("/y", "<body><a href=\"#\" onclick=\"f()\">a</a></body>")],
            ..SITE
        };
        assert!(handler.check().unwrap_err().contains("inline handler"));
        let style = Site {
            pages: &[("/z", "<body><p style=\"color:red\">a</p></body>")],
            ..SITE
        };
        assert!(style.check().unwrap_err().contains("inline style"));
    }

    #[tokio::test]
    async fn each_script_is_served_and_others_are_404() {
        let r = script(SITE.scripts, "a.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        assert_eq!(bytes, SITE.scripts[0].1.as_bytes());
        let r = script(SITE.scripts, "../mod.rs", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
