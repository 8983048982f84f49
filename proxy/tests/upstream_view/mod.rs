//! The upstream pool's view of the proxy's work, for tests that check a forwarded share the
//! way the pool would.

use strata_protocol::mining::{NewExtendedMiningJob, SetNewPrevHash};
use strata_protocol::U256;
use strata_proxy::work::UpstreamWork;
use strata_work::channel::{Channel, ChannelConfig};

/// The proxy's extended channel as the pool holds it for `w`: id `channel_id`, `w`'s
/// extranonce prefix and size, upstream target and version mask, and `w`'s job active on
/// `w`'s prevhash.
pub(crate) fn upstream_channel(w: &UpstreamWork, channel_id: u32) -> Channel {
    let mut c = Channel::new_extended(
        channel_id,
        &w.extranonce_prefix,
        u8::try_from(w.extranonce_size).expect("extranonce size fits a byte"),
        w.upstream_target,
        ChannelConfig {
            version_mask: w.version_mask,
            ..ChannelConfig::default()
        },
    )
    .expect("valid channel");
    c.on_new_extended_mining_job(&NewExtendedMiningJob {
        channel_id,
        job_id: w.job_id,
        min_ntime: None,
        version: w.version,
        version_rolling_allowed: w.version_rolling_allowed,
        merkle_path: w
            .merkle_path
            .iter()
            .map(|h| U256(*h))
            .collect::<Vec<_>>()
            .try_into()
            .expect("at most 255 levels"),
        coinbase_tx_prefix: w.coinbase_prefix.to_vec().try_into().expect("prefix fits"),
        coinbase_tx_suffix: w.coinbase_suffix.to_vec().try_into().expect("suffix fits"),
    })
    .expect("future job");
    c.on_set_new_prev_hash(&SetNewPrevHash {
        channel_id,
        job_id: w.job_id,
        prev_hash: U256(w.prev_hash),
        min_ntime: w.min_ntime,
        nbits: w.nbits,
    })
    .expect("activates");
    c
}
