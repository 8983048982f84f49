//! Pool addresses: `stratum2+tcp://host:port/AUTHORITY_KEY`
//! ([spec 4.4.1](https://github.com/stratum-mining/sv2-spec/blob/main/04-Protocol-Security.md);
//! the key is base58check of `[0x01, 0x00] ‖ x-only key`, docs/spec-notes.md §2).

use std::fmt;
use std::str::FromStr;

use strata_noise::PublicKey;

/// The only URL scheme accepted.
pub const SCHEME: &str = "stratum2+tcp";

/// One pool: where to connect and which authority key its certificate must be signed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The pool's authority key (pinned during the Noise handshake).
    pub authority: PublicKey,
}

/// Why a pool URL does not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolUrlError {
    /// No `scheme://`.
    #[error("pool url {url:?} has no scheme (expected {SCHEME}://host:port/authority_key)")]
    MissingScheme {
        /// The URL given.
        url: String,
    },
    /// A scheme other than `stratum2+tcp`.
    #[error("pool url scheme {scheme:?} is not supported (expected {SCHEME})")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
    },
    /// Nothing after the last `/`.
    #[error("pool url {url:?} has no authority key (expected {SCHEME}://host:port/authority_key)")]
    MissingAuthorityKey {
        /// The URL given.
        url: String,
    },
    /// No host.
    #[error("pool url {url:?} has no host")]
    MissingHost {
        /// The URL given.
        url: String,
    },
    /// No `:port`, or not a number in 1..=65535.
    #[error("pool url {url:?} has no valid port (got {port:?})")]
    InvalidPort {
        /// The URL given.
        url: String,
        /// The port text found (empty when missing).
        port: String,
    },
    /// The key is not a valid authority public key.
    #[error("pool url authority key {key:?} is invalid: {source}")]
    InvalidAuthorityKey {
        /// The key text.
        key: String,
        /// Why.
        #[source]
        source: strata_noise::NoiseError,
    },
}

impl FromStr for PoolUrl {
    type Err = PoolUrlError;

    fn from_str(s: &str) -> Result<Self, PoolUrlError> {
        let url = s.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| PoolUrlError::MissingScheme { url: url.into() })?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(PoolUrlError::UnsupportedScheme {
                scheme: scheme.into(),
            });
        }
        let (hostport, key) = rest
            .split_once('/')
            .ok_or_else(|| PoolUrlError::MissingAuthorityKey { url: url.into() })?;
        let key = key.trim_end_matches('/');
        if key.is_empty() {
            return Err(PoolUrlError::MissingAuthorityKey { url: url.into() });
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| PoolUrlError::MissingHost { url: url.into() })?;
            (h, p.strip_prefix(':').unwrap_or(""))
        } else {
            hostport.rsplit_once(':').unwrap_or((hostport, ""))
        };
        if host.is_empty() {
            return Err(PoolUrlError::MissingHost { url: url.into() });
        }
        let port_num = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| PoolUrlError::InvalidPort {
                url: url.into(),
                port: port.into(),
            })?;
        let authority =
            key.parse::<PublicKey>()
                .map_err(|source| PoolUrlError::InvalidAuthorityKey {
                    key: key.into(),
                    source,
                })?;
        Ok(PoolUrl {
            host: host.to_string(),
            port: port_num,
            authority,
        })
    }
}

impl fmt::Display for PoolUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{SCHEME}://[{}]:{}/{}",
                self.host, self.port, self.authority
            )
        } else {
            write!(
                f,
                "{SCHEME}://{}:{}/{}",
                self.host, self.port, self.authority
            )
        }
    }
}

impl PoolUrl {
    /// `host:port` for `TcpStream::connect` (IPv6 hosts bracketed).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        strata_noise::AuthorityKeypair::generate().public_key()
    }

    #[test]
    fn parses_and_prints_round_trip() {
        let k = key();
        let u: PoolUrl = format!("stratum2+tcp://pool.example.com:3336/{k}")
            .parse()
            .expect("valid url");
        assert_eq!(u.host, "pool.example.com");
        assert_eq!(u.port, 3336);
        assert_eq!(u.authority, k);
        assert_eq!(u.to_string().parse::<PoolUrl>().expect("round trip"), u);
        let v6: PoolUrl = format!("stratum2+tcp://[::1]:34254/{k}")
            .parse()
            .expect("ipv6");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.address(), "[::1]:34254");
        assert_eq!(
            v6.to_string().parse::<PoolUrl>().expect("v6 round trip"),
            v6
        );
    }

    #[test]
    fn refuses_bad_urls_with_clear_errors() {
        let k = key();
        let e = |s: String| s.parse::<PoolUrl>().expect_err("must fail");
        assert!(matches!(
            e("pool:3336".into()),
            PoolUrlError::MissingScheme { .. }
        ));
        assert!(matches!(
            e(format!("stratum+tcp://pool:3336/{k}")),
            PoolUrlError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            e("stratum2+tcp://pool:3336".into()),
            PoolUrlError::MissingAuthorityKey { .. }
        ));
        assert!(matches!(
            e("stratum2+tcp://pool:3336/".into()),
            PoolUrlError::MissingAuthorityKey { .. }
        ));
        assert!(matches!(
            e(format!("stratum2+tcp://pool/{k}")),
            PoolUrlError::InvalidPort { .. }
        ));
        assert!(matches!(
            e(format!("stratum2+tcp://pool:0/{k}")),
            PoolUrlError::InvalidPort { .. }
        ));
        assert!(matches!(
            e(format!("stratum2+tcp://:3336/{k}")),
            PoolUrlError::MissingHost { .. }
        ));
        let bad = e("stratum2+tcp://pool:3336/notakey".into());
        assert!(matches!(bad, PoolUrlError::InvalidAuthorityKey { .. }));
        assert!(bad.to_string().contains("notakey"), "{bad}");
    }
}
