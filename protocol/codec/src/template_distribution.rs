//! Template Distribution Protocol messages (`07-Template-Distribution-Protocol.md`): types 0x70-0x76.

#[allow(unused_imports)]
use crate::message::{protocol_enum, sv2_message};

protocol_enum! {
    /// A message of this sub-protocol.
    TemplateDistributionMessage => TemplateDistribution {}
}
