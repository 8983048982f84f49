//! `strata cert`.

use crate::secret::read_secret;
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use strata_net::cert::CertificateFile;
use strata_noise::{AuthorityKeypair, Certificate, PublicKey};

/// Default margin, in seconds, by which `valid_from` precedes now.
const CLOCK_SKEW_MARGIN_SECS: u64 = 60;

/// Options of `strata cert`.
#[derive(Debug, Args)]
#[command(group = ArgGroup::new("server").required(true).multiple(true))]
pub(crate) struct CertArgs {
    /// The authority's secret key, as @FILE (recommended: e.g. @authority.key from `strata
    /// keygen`) or literally (64 hex digits or base58check; visible in `ps`).
    #[arg(long, value_name = "SECRET|@FILE")]
    authority_secret: String,

    /// The server's static public key to certify (base58check, as SRI's configs print it).
    /// Required unless --server-secret is given; if both are, they must match.
    #[arg(long, value_name = "PUBKEY", group = "server")]
    server_public: Option<String>,

    /// Derive the server's public key from its static secret key, as @FILE (recommended) or
    /// literally (64 hex digits or base58check). Only the public key goes into the
    /// certificate.
    #[arg(long, value_name = "SECRET|@FILE", group = "server")]
    server_secret: Option<String>,

    /// How long the certificate is valid after --valid-from: `365d`, `12h`, `30m`, `90s` or
    /// a number of seconds (not zero). The window must end by 2106-02-07 (the certificate
    /// holds u32 unix seconds).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        allow_negative_numbers = true
    )]
    valid_for: u64,

    /// Start of validity, in unix seconds. Default: now minus 60 s, a margin so that a
    /// client whose clock is a little behind still accepts a certificate issued just now.
    /// A window that has already ended is refused; one that starts in the future is issued
    /// with a note on stderr.
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    valid_from: Option<u32>,

    /// Write the JSON to FILE (replacing it) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Issue, self-check and print the certificate.
pub(crate) fn run(args: &CertArgs) -> Result<()> {
    let authority =
        AuthorityKeypair::from_secret(read_secret(&args.authority_secret, "--authority-secret")?);
    let server = server_public_key(args)?;

    let now = unix_now()?;
    let valid_from = match args.valid_from {
        Some(t) => t,
        None => u32::try_from(now.saturating_sub(CLOCK_SKEW_MARGIN_SECS))
            .context("the clock is past 2106: unix time does not fit the certificate's u32")?,
    };
    let not_valid_after = window_end(valid_from, args.valid_for)?;
    if u64::from(not_valid_after) < now {
        bail!("the certificate would already have expired at {not_valid_after} (now {now})");
    }

    let cert = Certificate::issue(&authority, &server, valid_from, not_valid_after);
    let bytes = cert.to_bytes();
    // Self-check: the bytes we print parse back and verify under the authority key (at the
    // start of the window, so that a certificate issued for later also checks).
    Certificate::from_bytes(&bytes)
        .verify(&authority.public_key(), &server, valid_from, 0)
        .context("self-check of the issued certificate failed")?;

    let text = CertificateFile {
        certificate: cert,
        server,
        authority: authority.public_key(),
    }
    .to_json();
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    if u64::from(valid_from) > now {
        eprintln!("note: the certificate is not valid before {valid_from} (now {now})");
    }
    Ok(())
}

/// The public key to certify: --server-public, or derived from --server-secret (both: they
/// must agree).
fn server_public_key(args: &CertArgs) -> Result<PublicKey> {
    let from_secret = args
        .server_secret
        .as_deref()
        .map(|s| read_secret(s, "--server-secret").map(|k| k.public_key()))
        .transpose()?;
    let given = args
        .server_public
        .as_deref()
        .map(|s| {
            s.trim()
                .parse::<PublicKey>()
                .with_context(|| format!("--server-public: {s:?} is not a base58check public key"))
        })
        .transpose()?;
    match (given, from_secret) {
        (Some(p), Some(d)) if p != d => {
            bail!("--server-public {p} is not the public key of --server-secret (which is {d})")
        }
        (Some(p), _) | (None, Some(p)) => Ok(p),
        (None, None) => bail!("give --server-public or --server-secret"),
    }
}

/// `valid_from + valid_for`, which must fit the certificate's u32.
fn window_end(valid_from: u32, valid_for: u64) -> Result<u32> {
    u64::from(valid_from)
        .checked_add(valid_for)
        .and_then(|end| u32::try_from(end).ok())
        .with_context(|| {
            format!(
                "validity window {valid_from} + {valid_for}s ends after {} (the certificate's \
                 times are u32 unix seconds)",
                u32::MAX
            )
        })
}

fn unix_now() -> Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// Parse `365d`, `12h`, `30m`, `90s` or a bare number of seconds; must be positive.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use d, h, m or s")),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a number with an optional unit: 365d, 12h, 30m, 90s".into());
    }
    let n: u64 = digits.parse().map_err(|_| "number too large".to_owned())?;
    let secs = n.checked_mul(scale).ok_or("duration too large")?;
    if secs == 0 {
        return Err("the duration must be positive".into());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("365d"), Ok(365 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("3600"), Ok(3_600));
        for bad in [
            "",
            "d",
            "0",
            "0d",
            "-5",
            "1.5h",
            "5w",
            "5 d",
            "+5",
            "1dd",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration(&format!("{}d", u64::MAX / 86_400 + 1)).is_err());
    }

    #[test]
    fn window_must_fit_u32() {
        assert_eq!(window_end(10, 5).unwrap(), 15);
        assert_eq!(window_end(u32::MAX - 1, 1).unwrap(), u32::MAX);
        assert!(window_end(u32::MAX, 1).is_err());
        assert!(window_end(0, u64::MAX).is_err());
    }
}
