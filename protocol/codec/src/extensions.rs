//! Extension 0x0001 (negotiation) messages and the 0x0002 worker-hashrate TLV (`09-Extensions.md`).

#[allow(unused_imports)]
use crate::message::{protocol_enum, sv2_message};

protocol_enum! {
    /// A message of this sub-protocol.
    ExtensionsMessage => Extensions {}
}
