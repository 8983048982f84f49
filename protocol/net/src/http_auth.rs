//! Bearer-token access to a server's HTTP API and metrics (pool and proxy alike).
//!
//! * A server whose API listens beyond loopback must have a token: [`ApiAuth::new`] refuses
//!   an address that is not a loopback address (`0.0.0.0` and `::` included) without one.
//! * With a token, every request needs `Authorization: Bearer <token>`; anything else is
//!   answered `401 Unauthorized` (with `WWW-Authenticate: Bearer`), the reason logged at
//!   debug. The token is compared in constant time: both sides are hashed with SHA-256 and
//!   the digests compared without an early exit, so neither the length nor the first
//!   differing byte shows in the time taken.
//!
//! [`ApiAuth::check`] is the decision (no I/O); [`ApiAuth::protect`] puts it in front of an
//! axum router.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A configured API token (`api_token`): its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiToken(String);

impl ApiToken {
    /// The token `text`.
    pub fn new(text: impl Into<String>) -> ApiToken {
        ApiToken(text.into())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Why a server may not serve its API as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiAuthError {
    /// A non-loopback listen address without a token.
    #[error(
        "the HTTP API listens on {listen}, beyond loopback, without a token: set `api_token` \
         (requests must then carry `Authorization: Bearer <token>`) or listen on 127.0.0.1"
    )]
    TokenRequired {
        /// The API's listen address.
        listen: SocketAddr,
    },
    /// A token that is empty or holds characters a header value cannot carry.
    #[error("api_token must be non-empty visible ASCII without spaces")]
    BadToken,
}

/// Why a request was refused (logged at debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `Authorization` header.
    #[error("no Authorization header")]
    Missing,
    /// An `Authorization` header of another scheme than `Bearer`, or not text.
    #[error("Authorization is not a bearer token")]
    NotBearer,
    /// A bearer token that is not the configured one.
    #[error("wrong bearer token")]
    WrongToken,
}

/// The access rule of one server's API: open (loopback only) or a token.
#[derive(Clone)]
pub struct ApiAuth {
    /// SHA-256 of the token, if one is required.
    token_hash: Option<Arc<[u8; 32]>>,
}

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiAuth")
            .field("token_required", &self.token_hash.is_some())
            .finish()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl ApiAuth {
    /// The rule for an API listening on `listen` with `token` configured: refused when the
    /// address is not loopback and there is no token.
    pub fn new(listen: SocketAddr, token: Option<&ApiToken>) -> Result<ApiAuth, ApiAuthError> {
        match token {
            Some(ApiToken(t)) => {
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ApiAuthError::BadToken);
                }
                Ok(ApiAuth {
                    token_hash: Some(Arc::new(sha256(t.as_bytes()))),
                })
            }
            None if listen.ip().is_loopback() => Ok(ApiAuth { token_hash: None }),
            None => Err(ApiAuthError::TokenRequired { listen }),
        }
    }

    /// Whether requests need a token.
    pub fn token_required(&self) -> bool {
        self.token_hash.is_some()
    }

    /// Whether a request with this `Authorization` header value may pass.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Rejection> {
        let Some(expected) = &self.token_hash else {
            return Ok(());
        };
        let value = authorization.ok_or(Rejection::Missing)?;
        let text = std::str::from_utf8(value).map_err(|_| Rejection::NotBearer)?;
        let (scheme, token) = text.trim().split_once(' ').ok_or(Rejection::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Rejection::NotBearer);
        }
        let given = sha256(token.trim().as_bytes());
        // no early exit: the time does not depend on where the digests differ
        let diff = given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if std::hint::black_box(diff) == 0 {
            Ok(())
        } else {
            Err(Rejection::WrongToken)
        }
    }

    /// `router` with every route behind [`check`](Self::check) (unchanged when no token is
    /// required).
    pub fn protect(self, router: Router) -> Router {
        if self.token_hash.is_none() {
            return router;
        }
        router.layer(axum::middleware::from_fn_with_state(self, guard))
    }
}

async fn guard(State(auth): State<ApiAuth>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    match auth.check(authorization) {
        Ok(()) => next.run(request).await,
        Err(reason) => {
            tracing::debug!(%reason, path = request.uri().path(), "HTTP API request refused");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn beyond_loopback_needs_a_token() {
        let token = ApiToken::new("s3cret-token");
        for open in ["127.0.0.1:34255", "[::1]:34255", "127.0.0.2:1"] {
            let auth = ApiAuth::new(addr(open), None).expect(open);
            assert!(!auth.token_required());
            assert_eq!(auth.check(None), Ok(()));
        }
        for wide in ["0.0.0.0:34255", "[::]:34255", "192.168.1.5:34255"] {
            assert_eq!(
                ApiAuth::new(addr(wide), None).unwrap_err(),
                ApiAuthError::TokenRequired { listen: addr(wide) }
            );
            assert!(ApiAuth::new(addr(wide), Some(&token))
                .expect("with a token")
                .token_required());
        }
        // a token on loopback is required too
        assert!(ApiAuth::new(addr("127.0.0.1:1"), Some(&token))
            .expect("token")
            .token_required());
        for bad in ["", "two words", "tab\there", "é"] {
            assert_eq!(
                ApiAuth::new(addr("0.0.0.0:1"), Some(&ApiToken::new(bad))).unwrap_err(),
                ApiAuthError::BadToken,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let auth =
            ApiAuth::new(addr("0.0.0.0:1"), Some(&ApiToken::new("s3cret-token"))).expect("auth");
        assert_eq!(auth.check(Some(b"Bearer s3cret-token")), Ok(()));
        assert_eq!(auth.check(Some(b"bearer s3cret-token")), Ok(()));
        assert_eq!(auth.check(None), Err(Rejection::Missing));
        assert_eq!(
            auth.check(Some(b"Basic czNjcmV0LXRva2Vu")),
            Err(Rejection::NotBearer)
        );
        assert_eq!(auth.check(Some(b"s3cret-token")), Err(Rejection::NotBearer));
        assert_eq!(auth.check(Some(b"Bearer ")), Err(Rejection::NotBearer));
        assert_eq!(
            auth.check(Some(&[0xff, 0x20, 0x41])),
            Err(Rejection::NotBearer)
        );
        for wrong in [
            &b"Bearer s3cret-toke"[..],
            b"Bearer s3cret-token2",
            b"Bearer S3cret-token",
        ] {
            assert_eq!(
                auth.check(Some(wrong)),
                Err(Rejection::WrongToken),
                "{}",
                String::from_utf8_lossy(wrong)
            );
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = ApiToken::new("s3cret-token");
        assert!(!format!("{token:?}").contains("s3cret"));
        let auth = ApiAuth::new(addr("0.0.0.0:1"), Some(&token)).expect("auth");
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
