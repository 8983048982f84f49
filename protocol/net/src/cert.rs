//! The sans-IO part of a server's certificate life: reading a certificate file written by
//! `strata cert`, checking it against the authority and server keys, and deciding, given the
//! time, whether a running server keeps its certificate, signs a new one or warns that it
//! is about to expire. Nothing here reads a clock or a file; [`crate::keys`] does.
//!
//! ```text
//!  decide(cert, signer, now) ─┬─ Keep
//!                             ├─ Renew                (holds the authority key, < 1/4 left)
//!                             ├─ ExpiringSoon { .. }  (offline, < 7 days left)
//!                             └─ Expired { .. }       (offline, past not_valid_after)
//! ```

use strata_noise::{Certificate, NoiseError, PublicKey, SIGNATURE_NOISE_MESSAGE_LEN};

/// A server re-signs its certificate when less than `1 / RENEW_WHEN_LEFT_DENOMINATOR` of its
/// validity window is left.
pub const RENEW_WHEN_LEFT_DENOMINATOR: u32 = 4;

/// In offline mode, a server warns when its certificate expires within this many seconds
/// (7 days) and no fresh one was dropped in.
pub const WARN_BEFORE_EXPIRY_SECS: u32 = 7 * 86_400;

/// Seconds before "now" at which a certificate signed by the server starts (clock skew of
/// the miners).
pub const ISSUE_BACKDATE_SECS: u32 = 3_600;

/// What a running server should do about its certificate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: the certificate is fresh enough.
    Keep,
    /// Sign a new certificate (only when the server holds the authority key).
    Renew,
    /// Offline: the certificate expires in `secs_left` seconds and no fresh one is there.
    ExpiringSoon {
        /// Seconds until `not_valid_after`.
        secs_left: u32,
    },
    /// Offline: the certificate expired `secs_ago` seconds ago; new miners refuse it.
    Expired {
        /// Seconds since `not_valid_after`.
        secs_ago: u32,
    },
}

/// Whether the server can sign certificates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The authority key is in the data directory.
    Authority,
    /// Certificates are signed elsewhere and dropped in as a file.
    Offline,
}

/// Decides what to do about `cert` at `now` (unix seconds).
///
/// With the authority key: renew when less than a quarter of the window is left (or it has
/// passed). Offline: warn when less than [`WARN_BEFORE_EXPIRY_SECS`] are left, and say so
/// when it has expired.
pub fn decide(cert: &Certificate, signer: Signer, now: u32) -> Decision {
    let end = cert.not_valid_after();
    let window = end.saturating_sub(cert.valid_from());
    let left = end.saturating_sub(now);
    match signer {
        Signer::Authority => {
            if now > end || left < window / RENEW_WHEN_LEFT_DENOMINATOR {
                Decision::Renew
            } else {
                Decision::Keep
            }
        }
        Signer::Offline if now > end => Decision::Expired {
            secs_ago: now - end,
        },
        Signer::Offline if left < WARN_BEFORE_EXPIRY_SECS => {
            Decision::ExpiringSoon { secs_left: left }
        }
        Signer::Offline => Decision::Keep,
    }
}

/// The window of a certificate a server signs at `now` for `days` days (at least one).
pub fn issue_window(now: u32, days: u32) -> (u32, u32) {
    (
        now.saturating_sub(ISSUE_BACKDATE_SECS),
        now.saturating_add(days.max(1).saturating_mul(86_400)),
    )
}

/// A certificate file as `strata cert` writes it (JSON), reduced to what a server needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateFile {
    /// The certificate (`signature_noise_message`).
    pub certificate: Certificate,
    /// The key it certifies (`server_public_key`).
    pub server: PublicKey,
    /// The key that signed it (`authority_public_key`).
    pub authority: PublicKey,
}

impl CertificateFile {
    /// The JSON text of the file (what `strata cert` writes and [`parse_certificate_file`]
    /// reads): the certificate's fields for a reader, the two keys, and the 74-byte
    /// `signature_noise_message` a server presents; pretty-printed, with a final newline.
    pub fn to_json(&self) -> String {
        let c = &self.certificate;
        let v = serde_json::json!({
            "version": c.version(),
            "valid_from": c.valid_from(),
            "not_valid_after": c.not_valid_after(),
            "server_public_key": self.server.to_string(),
            "authority_public_key": self.authority.to_string(),
            "signature": hex::encode(c.signature()),
            "signature_noise_message": hex::encode(c.to_bytes()),
        });
        format!("{v:#}\n")
    }
}

/// Why a certificate file is refused.
#[derive(Debug, thiserror::Error)]
pub enum CertFileError {
    /// Not the JSON `strata cert` writes, or a field is missing or malformed.
    #[error("not a certificate from `strata cert`: {0}")]
    Format(String),
    /// `authority.pub` and the file's `authority_public_key` differ.
    #[error(
        "the certificate was signed by authority {in_file}, but the authority public key of \
         this server is {expected}"
    )]
    OtherAuthority {
        /// The file's authority key.
        in_file: String,
        /// The server's authority public key.
        expected: String,
    },
    /// The certificate is for another server key.
    #[error(
        "the certificate is for server key {certified}, but this server's key is {server} \
         (sign the key printed at start, or in the .pub of the server key)"
    )]
    OtherServerKey {
        /// The key in the certificate file.
        certified: String,
        /// The server's static key.
        server: String,
    },
    /// The signature, version or validity window does not check at the time given.
    #[error("the certificate does not verify: {0}")]
    Invalid(NoiseError),
}

/// Parses the JSON `strata cert` writes.
pub fn parse_certificate_file(text: &str) -> Result<CertificateFile, CertFileError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CertFileError::Format(e.to_string()))?;
    let field = |name: &str| {
        v.get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| CertFileError::Format(format!("no string field {name:?}")))
    };
    let key = |name: &str| -> Result<PublicKey, CertFileError> {
        field(name)?
            .trim()
            .parse()
            .map_err(|e| CertFileError::Format(format!("{name}: {e}")))
    };
    let bytes = hex::decode(field("signature_noise_message")?.trim())
        .map_err(|e| CertFileError::Format(format!("signature_noise_message: {e}")))?;
    let bytes: [u8; SIGNATURE_NOISE_MESSAGE_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
        CertFileError::Format(format!(
            "signature_noise_message: {} bytes, expected {SIGNATURE_NOISE_MESSAGE_LEN}",
            b.len()
        ))
    })?;
    Ok(CertificateFile {
        certificate: Certificate::from_bytes(&bytes),
        server: key("server_public_key")?,
        authority: key("authority_public_key")?,
    })
}

/// Checks a certificate file for a server with static key `server` whose clients pin
/// `authority` (when known from `authority.pub`; else the file's own is taken), at `now`
/// with no clock tolerance: a server must not present a certificate that is expired by its
/// own clock. Returns the authority key the certificate verifies under.
pub fn check_certificate_file(
    file: &CertificateFile,
    authority: Option<PublicKey>,
    server: &PublicKey,
    now: u32,
) -> Result<PublicKey, CertFileError> {
    let authority = authority.unwrap_or(file.authority);
    if file.authority != authority {
        return Err(CertFileError::OtherAuthority {
            in_file: file.authority.to_string(),
            expected: authority.to_string(),
        });
    }
    if file.server != *server {
        return Err(CertFileError::OtherServerKey {
            certified: file.server.to_string(),
            server: server.to_string(),
        });
    }
    file.certificate
        .verify(&authority, server, now, 0)
        .map_err(CertFileError::Invalid)?;
    Ok(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_noise::{AuthorityKeypair, StaticKeypair};

    const DAY: u32 = 86_400;
    const T0: u32 = 1_800_000_000;

    fn cert(from: u32, to: u32) -> Certificate {
        let a = AuthorityKeypair::generate();
        let s = StaticKeypair::generate();
        Certificate::issue(&a, &s.public_key(), from, to)
    }

    #[test]
    fn with_the_authority_key_renews_when_a_quarter_is_left() {
        // 100 days from T0: renew once fewer than 25 days are left
        let c = cert(T0, T0 + 100 * DAY);
        let at = |d: u32| decide(&c, Signer::Authority, T0 + d * DAY);
        assert_eq!(at(0), Decision::Keep);
        assert_eq!(at(74), Decision::Keep);
        assert_eq!(decide(&c, Signer::Authority, T0 + 75 * DAY), Decision::Keep);
        assert_eq!(
            decide(&c, Signer::Authority, T0 + 75 * DAY + 1),
            Decision::Renew
        );
        assert_eq!(at(99), Decision::Renew);
        assert_eq!(at(200), Decision::Renew);

        // a renewed certificate (issued at day 80 for 100 days) is kept again
        let (from, to) = issue_window(T0 + 80 * DAY, 100);
        let renewed = cert(from, to);
        assert_eq!(
            decide(&renewed, Signer::Authority, T0 + 80 * DAY),
            Decision::Keep
        );
    }

    #[test]
    fn offline_warns_in_the_last_week_then_says_expired() {
        let c = cert(T0, T0 + 30 * DAY);
        let at = |t: u32| decide(&c, Signer::Offline, t);
        assert_eq!(at(T0), Decision::Keep);
        // never Renew without the key, even past a quarter
        assert_eq!(at(T0 + 23 * DAY), Decision::Keep);
        assert_eq!(
            at(T0 + 23 * DAY + 1),
            Decision::ExpiringSoon {
                secs_left: 7 * DAY - 1
            }
        );
        assert_eq!(at(T0 + 30 * DAY), Decision::ExpiringSoon { secs_left: 0 });
        assert_eq!(at(T0 + 30 * DAY + 10), Decision::Expired { secs_ago: 10 });
    }

    #[test]
    fn a_degenerate_window_is_renewed_or_warned_about() {
        let c = cert(T0, T0);
        assert_eq!(decide(&c, Signer::Authority, T0 + 1), Decision::Renew);
        assert_eq!(
            decide(&c, Signer::Offline, T0 - 5),
            Decision::ExpiringSoon { secs_left: 5 }
        );
    }

    fn file_json(a: &AuthorityKeypair, server: &PublicKey, from: u32, to: u32) -> String {
        CertificateFile {
            certificate: Certificate::issue(a, server, from, to),
            server: *server,
            authority: a.public_key(),
        }
        .to_json()
    }

    #[test]
    fn certificate_files_are_checked_against_both_keys_and_the_clock() {
        let a = AuthorityKeypair::generate();
        let s = StaticKeypair::generate().public_key();
        let text = file_json(&a, &s, T0, T0 + 10 * DAY);
        let f = parse_certificate_file(&text).expect("parses");
        assert_eq!(f.server, s);
        assert_eq!(f.authority, a.public_key());
        assert_eq!(f.certificate.not_valid_after(), T0 + 10 * DAY);

        assert_eq!(
            check_certificate_file(&f, None, &s, T0 + DAY).expect("valid"),
            a.public_key()
        );
        assert_eq!(
            check_certificate_file(&f, Some(a.public_key()), &s, T0 + DAY).expect("valid"),
            a.public_key()
        );
        let other = AuthorityKeypair::generate().public_key();
        assert!(matches!(
            check_certificate_file(&f, Some(other), &s, T0 + DAY),
            Err(CertFileError::OtherAuthority { .. })
        ));
        let other_server = StaticKeypair::generate().public_key();
        assert!(matches!(
            check_certificate_file(&f, None, &other_server, T0 + DAY),
            Err(CertFileError::OtherServerKey { .. })
        ));
        let err = check_certificate_file(&f, None, &s, T0 + 10 * DAY + 1).expect_err("expired");
        assert!(matches!(
            err,
            CertFileError::Invalid(NoiseError::CertificateExpired { .. })
        ));
        assert!(err.to_string().contains("expired"), "{err}");

        // a forged signature: the file claims authority `a` but `b` signed it
        let b = AuthorityKeypair::generate();
        let mut forged: serde_json::Value =
            serde_json::from_str(&file_json(&b, &s, T0, T0 + DAY)).expect("json");
        forged["authority_public_key"] = a.public_key().to_string().into();
        let f = parse_certificate_file(&forged.to_string()).expect("parses");
        assert!(matches!(
            check_certificate_file(&f, Some(a.public_key()), &s, T0),
            Err(CertFileError::Invalid(NoiseError::CertificateBadSignature))
        ));

        for bad in ["", "{}", "not json", r#"{"signature_noise_message": "00"}"#] {
            assert!(
                matches!(parse_certificate_file(bad), Err(CertFileError::Format(_))),
                "{bad:?}"
            );
        }
    }
}
