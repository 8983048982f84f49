//! The keys of the proxy's SV2 server toward its miners, kept in the data directory: its own
//! authority key (`downstream-authority.key`, 0600; the public half in
//! `downstream-authority.pub`, for the miners' configuration), the static Noise key
//! (`downstream-server.key`, 0600), and a certificate signed at every start. The same layout
//! as the pool's keys, with a `downstream-` prefix so that they never mix with upstream
//! settings in a shared directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_noise::{
    AuthorityKeypair, Certificate, NoiseError, PublicKey, Responder, SecretKey, StaticKeypair,
};

/// The keys a running proxy serves SV2 miners with.
#[derive(Debug)]
pub struct DownstreamKeys {
    /// The authority public key (what miners pin).
    pub authority: PublicKey,
    /// The Noise responder with a fresh certificate.
    pub responder: Responder,
}

/// Why the keys cannot be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A key file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key file does not hold a valid secret key.
    #[error("{}: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The error.
        source: NoiseError,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn load_or_create_secret(path: &Path) -> Result<(SecretKey, bool), KeysError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let key = SecretKey::from_str(text.trim()).map_err(|source| KeysError::BadKey {
                path: path.to_path_buf(),
                source,
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io_error(path))?;
            writeln!(f, "{}", key.encode().as_str()).map_err(io_error(path))?;
            f.sync_all().map_err(io_error(path))?;
            Ok((key, true))
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Loads the proxy's downstream keys from `dir`, creating them on first start, and issues a
/// certificate valid from an hour ago (clock skew) for `days` days. Writes
/// `downstream-authority.pub`.
pub fn load_or_create(dir: &Path, days: u32) -> Result<DownstreamKeys, KeysError> {
    let (auth_secret, created) = load_or_create_secret(&dir.join("downstream-authority.key"))?;
    let authority = AuthorityKeypair::from_secret(auth_secret);
    let public = authority.public_key();
    let pub_path = dir.join("downstream-authority.pub");
    std::fs::write(&pub_path, format!("{public}\n")).map_err(io_error(&pub_path))?;
    if created {
        tracing::info!(authority = %public, "generated a new downstream authority key");
    }
    let (server_secret, _) = load_or_create_secret(&dir.join("downstream-server.key"))?;
    let server = StaticKeypair::from_secret(server_secret);
    let now = unix_now();
    let cert = Certificate::issue(
        &authority,
        &server.public_key(),
        now.saturating_sub(3600),
        now.saturating_add(days.max(1).saturating_mul(86_400)),
    );
    Ok(DownstreamKeys {
        authority: public,
        responder: Responder::new(server, cert),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reloaded() {
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
