//! The keys of the proxy's SV2 server toward its miners, kept in the data directory: its own
//! authority key (`downstream-authority.key`, 0600; the public half in
//! `downstream-authority.pub`, for the miners' configuration), the static Noise key
//! (`downstream-server.key`, 0600), and a certificate signed at every start and renewed while
//! running. Or, with the authority kept offline, `downstream-server.cert` from `strata cert`
//! and no `downstream-authority.key` ([`strata_net::keys`] has the rules). The same layout
//! as the pool's keys, with a `downstream-` prefix so that they never mix with upstream
//! settings in a shared directory.

use std::path::Path;

pub use strata_net::keys::{KeysError, ServerKeys as DownstreamKeys};

/// Loads the proxy's downstream keys from `dir` (`downstream-*` files), creating them on
/// first start, and signs a certificate valid for `days` days
/// ([`strata_net::keys::load_or_create`]).
pub fn load_or_create(dir: &Path, days: u32) -> Result<DownstreamKeys, KeysError> {
    let keys = strata_net::keys::load_or_create(dir, "downstream-", days)?;
    if keys.created {
        tracing::info!(authority = %keys.authority, "generated a new downstream authority key");
    }
    if keys.renewal.signer() == strata_net::cert::Signer::Offline {
        tracing::info!(
            authority = %keys.authority,
            not_valid_after = keys.responder.certificate().not_valid_after(),
            "using downstream-server.cert, signed by an offline authority"
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path(), 30).expect("create");
        let b = load_or_create(dir.path(), 30).expect("reload");
        assert_eq!(a.authority, b.authority);
        assert_eq!(a.responder.public_key(), b.responder.public_key());
        let text =
            std::fs::read_to_string(dir.path().join("downstream-authority.pub")).expect("pub file");
        assert_eq!(text.trim(), a.authority.to_string());
        std::fs::write(dir.path().join("downstream-server.key"), "garbage").expect("write");
        assert!(matches!(
            load_or_create(dir.path(), 30),
            Err(KeysError::BadKey { .. })
        ));
    }
}
