//! Mining Protocol messages (`05-Mining-Protocol.md`): types 0x10-0x25.

#[allow(unused_imports)]
use crate::message::{protocol_enum, sv2_message};

protocol_enum! {
    /// A message of this sub-protocol.
    MiningMessage => Mining {}
}
