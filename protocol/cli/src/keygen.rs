//! `strata keygen`.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_noise::AuthorityKeypair;

/// Generate an authority keypair, write `out` (secret, mode 0600) and `out.pub`, and print the
/// public key on stdout.
pub(crate) fn run(out: &Path, force: bool) -> Result<()> {
    let pub_path = pub_path(out);
    if !force {
        for p in [out, pub_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                bail!(
                    "{} already exists; not overwriting a key (use --force to replace it)",
                    p.display()
                );
            }
        }
    }
    let keys = AuthorityKeypair::generate();
    let public = keys.public_key().to_string();

    let mut f =
        create_secret_file(out, force).with_context(|| format!("creating {}", out.display()))?;
    let secret = keys.secret_key().encode();
    f.write_all(secret.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;

    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;

    eprintln!(
        "wrote the secret key to {} (mode 0600) and the public key to {}",
        out.display(),
        pub_path.display()
    );
    println!("{public}");
    Ok(())
}

/// `FILE.pub` next to `FILE`.
fn pub_path(out: &Path) -> PathBuf {
    let mut s = OsString::from(out.as_os_str());
    s.push(".pub");
    PathBuf::from(s)
}

/// Open `path` for the secret key, readable by the owner only before anything is written.
/// Without `force` the file must not exist (checked atomically).
fn create_secret_file(path: &Path, force: bool) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let f = opts.open(path)?;
        // `mode` applies only when the file is created; with --force it may already exist.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    {
        opts.open(path)
    }
}
