//! `strata`: command-line tools for Stratum V2.
//!
//! * `strata decode <hex>`: print a plaintext SV2 frame as JSON.
//! * `strata keygen`: generate an authority keypair.
//! * `strata cert`: issue a certificate for a server's static key.
//! * `strata verify-payout`: check a pool's found block against its PPLNS window.
//!
//! Errors are one line on stderr starting `error: `; the exit status is 1 for a failed
//! command and 2 for a command line clap could not parse.

mod cert;
mod decode;
mod keygen;
mod secret;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Stratum V2 tools: decode frames, make keys and certificates, verify payouts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a plaintext SV2 frame (header + payload, as hex) as JSON.
    ///
    /// Output: {"extension_type", "msg_type", "channel_msg", "message", "fields"}, with the
    /// spec's field names; integers as numbers (a U64 above 2^53 as a decimal string), byte
    /// strings and U256 as lowercase hex, STR0_255 as strings, sequences as arrays, OPTION as
    /// null or its value.
    ///
    /// Bytes after the message are the TLV fields of negotiated extensions (spec 3.4.3,
    /// little-endian as SRI writes them). They are listed under "tlvs" as
    /// {"extension_type", "field_type", "value" (hex)}; the user_identity field of extension
    /// 0x0002 (0x0002/0x01) also gets "user_identity" with the worker name. Trailing bytes
    /// that are not a well-formed TLV list are an error, and so is a SetupConnection whose
    /// protocol is not 0 (Mining), 1 (Job Declaration) or 2 (Template Distribution).
    Decode {
        /// The frame as hex (whitespace and a leading 0x are ignored); `-` reads stdin.
        hex: String,
    },

    /// Generate a certificate authority keypair.
    ///
    /// Writes the secret key (base58check, as SRI's configs take it) to FILE with mode 0600
    /// and the public key to FILE.pub, and prints the public key (base58check, the key miners
    /// pin and put in stratum2+tcp://host:port/KEY URLs) as the only line on stdout.
    ///
    /// Keep the secret key off the servers: it is only needed to issue certificates
    /// (`strata cert`).
    Keygen {
        /// Where to write the secret key; the public key goes to the same path plus `.pub`.
        #[arg(long, value_name = "FILE", default_value = "authority.key")]
        out: PathBuf,
        /// Replace FILE and FILE.pub if they exist. The old secret key is then gone for good:
        /// no new certificate can be issued for miners that pin its public key.
        #[arg(long)]
        force: bool,
    },

    /// Issue a certificate for a server's static key, signed by the authority key.
    ///
    /// Prints (or writes to --out) a JSON object: {"version", "valid_from", "not_valid_after",
    /// "server_public_key", "authority_public_key", "signature" (hex, 64 bytes),
    /// "signature_noise_message" (hex, the 74 bytes the server sends in handshake act 2)}.
    /// The certificate is verified against the authority public key before it is printed.
    ///
    /// Secrets are accepted as 64 hex digits or base58check (SRI's format), literally or as
    /// @FILE. Prefer @FILE: a literal secret on the command line is visible to other users in
    /// `ps` and lands in shell history.
    Cert(cert::CertArgs),

    /// Check that a block the pool found pays what its window of shares earned.
    ///
    /// Fetches the block's record and payout rules (network, the pool's script, fee, dust,
    /// output limit) and the shares of its PPLNS window from the pool's API, recomputes the
    /// split with the function the pool builds its coinbases with, and compares it with the
    /// block's coinbase, fetched from a node (--node), a file (--block-file) or a Bitcoin Core
    /// blocks directory (--blocks-dir). The block must hash to HASH and its merkle root must
    /// match its transactions, so whoever supplies it cannot alter its coinbase.
    ///
    /// Prints one line per payee (`ok` or `MISMATCH` with what was expected and what the
    /// coinbase pays) and exits with status 1 on any mismatch: an output that differs or is
    /// missing, value outside the split, a reward or recorded output list that differs from
    /// the coinbase, a window larger than the pool's.
    VerifyPayout(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let result = match cli.command {
        Command::Decode { hex } => decode::run(&hex),
        Command::Keygen { out, force } => keygen::run(&out, force),
        Command::Cert(args) => cert::run(&args),
        Command::VerifyPayout(args) => verify::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Print clap's outcome: help and version as clap formats them; a parse error as one line.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Help goes to stdout (or stderr for a missing subcommand), as clap decides.
            let _ = e.print();
            ExitCode::from(if e.use_stderr() { 2 } else { 0 })
        }
        _ => {
            // clap's message spans several lines (message, details, tip, usage): keep what
            // comes before the usage, on one line.
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:"))
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let msg = msg.join(" ");
            let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
            eprintln!("error: {msg} (try --help)");
            ExitCode::from(2)
        }
    }
}

/// Collapse line breaks so that an error stays on one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
