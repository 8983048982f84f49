//! Reading secret keys given as `SECRET` or `@FILE`.

use anyhow::{Context, Result};
use std::path::Path;
use strata_noise::SecretKey;
use zeroize::Zeroizing;

/// Parse a secret key given literally (64 hex digits or base58check) or as `@path` to a file
/// holding it (surrounding whitespace ignored). `what` names the option in error messages;
/// they never quote the secret.
pub(crate) fn read_secret(arg: &str, what: &str) -> Result<SecretKey> {
    match arg.strip_prefix('@') {
        Some(path) => {
            let path = Path::new(path);
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("{what}: reading {}", path.display()))?,
            );
            text.trim().parse().with_context(|| {
                format!(
                    "{what}: {} does not hold a secret key (64 hex digits or base58check)",
                    path.display()
                )
            })
        }
        None => arg.trim().parse().with_context(|| {
            format!("{what}: not a secret key (64 hex digits or base58check, or @FILE)")
        }),
    }
}
