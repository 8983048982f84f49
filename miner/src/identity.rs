//! The default user identity: a fixed regtest P2WPKH address (so a pool that pays to the
//! address in the user identity has somewhere to pay) plus a worker suffix.

use std::sync::OnceLock;

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, KnownHrp};

/// The secret key behind [`default_address`]: a test key, never to hold real funds.
pub const TEST_SECRET_KEY: [u8; 32] = [0x11; 32];

/// The bech32 regtest (`bcrt1q...`) P2WPKH address of [`TEST_SECRET_KEY`], derived once per
/// process (a secp256k1 context and a point multiplication: the load generator opens
/// thousands of connections a second).
pub fn default_address() -> &'static str {
    static ADDRESS: OnceLock<String> = OnceLock::new();
    ADDRESS.get_or_init(|| {
        let secp = Secp256k1::signing_only();
        match SecretKey::from_slice(&TEST_SECRET_KEY) {
            Ok(sk) => {
                let pk = CompressedPublicKey(PublicKey::from_secret_key(&secp, &sk));
                Address::p2wpkh(&pk, KnownHrp::Regtest).to_string()
            }
            // 0x11.. is a valid secp256k1 scalar; this arm only satisfies the type
            Err(_) => String::from("bcrt1qinvalid"),
        }
    })
}

/// The default user of miner `index`: `<default_address>.sim<index>`.
pub fn default_user(index: usize) -> String {
    format!("{}.sim{index}", default_address())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn default_user_is_a_regtest_address_with_a_worker() {
        let u = default_user(3);
        let (addr, worker) = u.split_once('.').expect("worker suffix");
        assert_eq!(worker, "sim3");
        assert!(addr.starts_with("bcrt1q"), "{addr}");
        let parsed = bitcoin::Address::from_str(addr)
            .expect("parses")
            .require_network(bitcoin::Network::Regtest)
            .expect("regtest");
        assert!(parsed.script_pubkey().is_p2wpkh());
    }
}
