//! Job Declaration Protocol messages (`06-Job-Declaration-Protocol.md`): types 0x50-0x60.

#[allow(unused_imports)]
use crate::message::{protocol_enum, sv2_message};

protocol_enum! {
    /// A message of this sub-protocol.
    JobDeclarationMessage => JobDeclaration {}
}
