//! `strata`: command-line tools for Stratum V2.
//!
//! * `strata decode <hex>`: print a plaintext SV2 frame as JSON.
//! * `strata keygen`: generate an authority keypair.
//! * `strata cert`: issue a certificate for a server's static key.

mod decode;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Stratum V2 tools: decode frames, make keys and certificates"
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
    /// null or its value. TLV fields after the message, if any, are listed under "tlvs".
    Decode {
        /// The frame as hex (whitespace and a leading 0x are ignored); `-` reads stdin.
        hex: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode { hex } => decode::run(&hex),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
