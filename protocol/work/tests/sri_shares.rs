//! Differential share validation against SRI's `channels_sv2` 8.0.0: its client-side
//! `StandardChannel` / `ExtendedChannel`, which take the same Mining Protocol messages we
//! record, and its server-side `StandardChannel` (the pool path), whose jobs come from its own
//! job factory and are recorded on ours as the `NewMiningJob` it would send. Same channel,
//! jobs and prevhashes, same shares; the verdicts (accepted, block, or which error code) must
//! agree.
//!
//! Known differences, each pinned by a test below:
//! * **Target equality**: SRI's client channels accept a share only when `hash < target`
//!   (its server channels use `<=`); we accept `hash <= target` (spec 5.3.21: hashes *higher*
//!   than the target are rejected). Only a hash exactly equal to the target differs.
//! * **nTime upper bound**: SRI has no clock and accepts up to `min_ntime + 7200`; we accept
//!   up to `max(min_ntime, now) + 7200`. With `now = 0` (as here) the bounds agree.
//! * **Active job before any prevhash**: SRI stores it and answers its shares with a
//!   `NoChainTip` error (no error code); we refuse the job itself
//!   ([`ChannelError::NoPrevHash`]).
//! * **Duplicate budget**: SRI's client forgets the oldest of 4096 hashes (a forgotten share
//!   can be replayed); past our budget (default 65 536) we empty the set and refuse shares
//!   with an nTime at or below the highest one it held ([`Rejection::BelowNtimeFloor`]), so
//!   no forgotten share can come back.

use std::collections::BTreeMap;

use binary_sv2::Sv2OptionOwned as Sv2Option;
use bitcoin::ScriptBuf;
use channels_sv2::client::extended::ExtendedChannel as SriExtended;
use channels_sv2::client::share_accounting::{ShareValidationError, ShareValidationResult};
use channels_sv2::client::standard::StandardChannel as SriStandard;
use channels_sv2::extranonce_manager::{ExtranonceAllocator, ExtranoncePrefix};
use channels_sv2::server::share_accounting::{
    ShareValidationError as SrvError, ShareValidationResult as SrvResult,
};
use channels_sv2::server::standard::StandardChannel as SriServerStandard;
use mining_sv2::{
    NewExtendedMiningJobOwned, NewMiningJobOwned, SetNewPrevHashOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandardOwned,
};
use strata_protocol::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use strata_protocol::{Seq0_255, B0_32, B0_64K, U256};
use strata_work::channel::{Channel, ChannelConfig, ChannelError};
use strata_work::coinbase::{bip34_height_push, output, Coinbase, CoinbaseParams};
use strata_work::share::{validate_extended, validate_standard, AcceptedShare, Rejection};
use strata_work::target::Target;
use template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned as SetNewPrevHashTdp};

const VERSION: u32 = 0x2000_0000;
const MIN_NTIME: u32 = 1_746_839_905;
/// About one hash in 512 is a block.
const NBITS: u32 = 0x1f7f_ffff;
const PREFIX: [u8; 4] = [0xa0, 0xa1, 0xa2, 0xa3];

/// A target about one hash in 8 meets.
fn target() -> [u8; 32] {
    let mut t = [0xff; 32];
    t[31] = 0x1f;
    t
}

/// Our verdict in SRI's terms: where we name the fault more precisely than SRI (nTime out of
/// the window: `ntime-too-early` / `ntime-too-late`, SRI's `invalid-share`;
/// docs/spec-vs-sri.md), SRI's code.
fn ours_code(r: &Result<AcceptedShare, Rejection>) -> String {
    match r {
        Ok(a) if a.is_block.is_some() => "block".into(),
        Ok(_) => "ok".into(),
        Err(Rejection::NtimeTooEarly { .. } | Rejection::NtimeTooLate { .. }) => {
            "invalid-share".into()
        }
        Err(e) => e.error_code().into(),
    }
}

/// The verdict of one of SRI's share validations as `ours_code` gives ours: "block", "ok",
/// the error code, or the error itself when it has no code. `$res` and `$err` are the result
/// and error types (SRI's client and server channels each have their own).
macro_rules! sri_verdict {
    ($r:expr, $res:ident, $err:ident) => {
        match $r {
            Ok($res::BlockFound(..)) => "block".into(),
            Ok($res::Valid(_)) => "ok".into(),
            Err(
                $err::Invalid(c)
                | $err::Stale(c)
                | $err::InvalidJobId(c)
                | $err::DoesNotMeetTarget(c)
                | $err::VersionRollingNotAllowed(c)
                | $err::DuplicateShare(c)
                | $err::BadExtranonceSize(c),
            ) => (*c).into(),
            Err(e) => format!("{e:?}"),
        }
    };
}

fn sri_code(r: &Result<ShareValidationResult, ShareValidationError>) -> String {
    sri_verdict!(r, ShareValidationResult, ShareValidationError)
}

fn sri_server_code(r: &Result<SrvResult, SrvError>) -> String {
    sri_verdict!(r, SrvResult, SrvError)
}

/// The standard share `s` as SRI's message.
fn sri_std_share(s: &SubmitSharesStandard) -> SubmitSharesStandardOwned {
    SubmitSharesStandardOwned {
        channel_id: s.channel_id,
        sequence_number: s.sequence_number,
        job_id: s.job_id,
        nonce: s.nonce,
        ntime: s.ntime,
        version: s.version,
    }
}

/// Counts the verdict `submit` returns for share number `n`; every third share accepted is
/// submitted again and the verdict on the resubmission (a duplicate) counted too.
fn tally(seen: &mut BTreeMap<String, u32>, n: u32, mut submit: impl FnMut() -> String) {
    let v = submit();
    if (v == "ok" || v == "block") && n.is_multiple_of(3) {
        *seen.entry(submit()).or_default() += 1;
    }
    *seen.entry(v).or_default() += 1;
}

/// The verdicts a run of the standard differential tests must reach.
const STANDARD_VERDICTS: &[&str] = &[
    "ok",
    "block",
    "difficulty-too-low",
    "duplicate-share",
    "invalid-job-id",
    "invalid-share",
    "invalid-non-rollable-version-bit",
];

/// Every verdict of `codes` was seen at least once.
#[track_caller]
fn assert_seen(seen: &BTreeMap<String, u32>, codes: &[&str]) {
    for code in codes {
        assert!(
            seen.get(*code).copied().unwrap_or(0) > 0,
            "{code}: {seen:?}"
        );
    }
}

/// The same job message for both sides.
fn std_job(
    job_id: u32,
    min_ntime: Option<u32>,
    root: [u8; 32],
) -> (NewMiningJob, NewMiningJobOwned) {
    (
        NewMiningJob {
            channel_id: 1,
            job_id,
            min_ntime,
            version: VERSION,
            merkle_root: U256(root),
        },
        NewMiningJobOwned {
            channel_id: 1,
            job_id,
            min_ntime: Sv2Option::new(min_ntime),
            version: VERSION,
            merkle_root: root.into(),
        },
    )
}

fn prevhash(job_id: u32, prev: [u8; 32]) -> (SetNewPrevHash, SetNewPrevHashOwned) {
    (
        SetNewPrevHash {
            channel_id: 1,
            job_id,
            prev_hash: U256(prev),
            min_ntime: MIN_NTIME,
            nbits: NBITS,
        },
        SetNewPrevHashOwned {
            channel_id: 1,
            job_id,
            prev_hash: prev.into(),
            min_ntime: MIN_NTIME,
            nbits: NBITS,
        },
    )
}

struct Std {
    ours: Channel,
    sri: SriStandard,
}

impl Std {
    fn new(target: [u8; 32]) -> Self {
        Std {
            ours: Channel::new_standard(
                1,
                &PREFIX,
                Target::from_le_bytes(target),
                ChannelConfig::default(),
            )
            .expect("valid"),
            sri: SriStandard::new(
                1,
                "user".into(),
                ExtranoncePrefix::from_wire(PREFIX.to_vec()).expect("short"),
                bitcoin::Target::from_le_bytes(target),
                1.0,
                None,
            )
            .expect("valid"),
        }
    }

    fn job(&mut self, job_id: u32, min_ntime: Option<u32>, root: [u8; 32]) {
        let (a, b) = std_job(job_id, min_ntime, root);
        self.ours.on_new_mining_job(&a).expect("ours");
        self.sri.on_new_mining_job(b).expect("sri");
    }

    fn prevhash(&mut self, job_id: u32, prev: [u8; 32]) {
        let (a, b) = prevhash(job_id, prev);
        self.ours.on_set_new_prev_hash(&a).expect("ours");
        self.sri.on_set_new_prev_hash(b).expect("sri");
    }

    fn submit(&mut self, s: SubmitSharesStandard) -> (String, String) {
        let ours = ours_code(&validate_standard(&mut self.ours, &s, 0));
        let sri = sri_code(&self.sri.validate_share(sri_std_share(&s)));
        (ours, sri)
    }
}

fn std_share(job_id: u32, nonce: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id: 1,
        sequence_number: nonce,
        job_id,
        nonce,
        ntime: MIN_NTIME,
        version: VERSION,
    }
}

/// Submits to both; returns our verdict after checking SRI's is the same.
fn agree(c: &mut Std, s: SubmitSharesStandard) -> String {
    let (ours, sri) = c.submit(s.clone());
    assert_eq!(ours, sri, "share {s:?}");
    ours
}

#[test]
fn standard_shares_agree_with_sri() {
    let mut c = Std::new(target());
    c.job(1, None, [0x11; 32]);
    c.prevhash(1, [0x22; 32]);
    c.job(2, Some(MIN_NTIME), [0x33; 32]);
    let mut seen = BTreeMap::<String, u32>::new();
    for n in 0..3000u32 {
        let job = 1 + n % 2;
        let mut s = std_share(job, n / 2);
        match n % 97 {
            0 => s.job_id = 77,                     // unknown job
            1 => s.ntime = MIN_NTIME - 1,           // too early
            2 => s.ntime = MIN_NTIME + 1 + 7201,    // too late
            3 => s.version |= 0x8000_0000,          // outside BIP323
            4 => s.version |= 0x1f00_0000,          // rolled, fine
            5 => s.nonce = (n / 2).wrapping_sub(2), // likely a duplicate if it was accepted
            _ => {}
        }
        tally(&mut seen, n, || agree(&mut c, s.clone()));
    }
    // stale after a new prevhash
    c.job(3, None, [0x44; 32]);
    c.prevhash(3, [0x55; 32]);
    for n in 0..50 {
        assert_eq!(agree(&mut c, std_share(1 + n % 2, n)), "stale-share");
        *seen.entry(agree(&mut c, std_share(3, n))).or_default() += 1;
    }
    assert_seen(&seen, STANDARD_VERDICTS);
}

fn ext_coinbase() -> Coinbase {
    Coinbase::build(&CoinbaseParams {
        version: 2,
        script_sig_prefix: bip34_height_push(840_000),
        pool_tag: b"/strata/".to_vec(),
        extranonce_len: PREFIX.len() + 4,
        sequence: u32::MAX,
        pool_outputs: vec![output(312_500_000, ScriptBuf::from_bytes(vec![0x51]))],
        template_outputs: vec![],
        lock_time: 0,
        witness_reserved_value: [0; 32],
    })
    .expect("valid")
}

struct Ext {
    ours: Channel,
    sri: SriExtended,
}

impl Ext {
    fn new() -> Self {
        Ext {
            ours: Channel::new_extended(
                1,
                &PREFIX,
                4,
                Target::from_le_bytes(target()),
                ChannelConfig::default(),
            )
            .expect("valid"),
            sri: SriExtended::new(
                1,
                "user".into(),
                ExtranoncePrefix::from_wire(PREFIX.to_vec()).expect("short"),
                bitcoin::Target::from_le_bytes(target()),
                1.0,
                true,
                4,
                None,
            )
            .expect("valid"),
        }
    }

    fn job(&mut self, job_id: u32, min_ntime: Option<u32>, rolling: bool, path: &[[u8; 32]]) {
        let cb = ext_coinbase();
        let ours = NewExtendedMiningJob {
            channel_id: 1,
            job_id,
            min_ntime,
            version: VERSION,
            version_rolling_allowed: rolling,
            merkle_path: Seq0_255::new(path.iter().map(|h| U256(*h)).collect()).expect("short"),
            coinbase_tx_prefix: B0_64K::new(cb.prefix().to_vec()).expect("fits"),
            coinbase_tx_suffix: B0_64K::new(cb.suffix().to_vec()).expect("fits"),
        };
        let sri = NewExtendedMiningJobOwned {
            channel_id: 1,
            job_id,
            min_ntime: Sv2Option::new(min_ntime),
            version: VERSION,
            version_rolling_allowed: rolling,
            merkle_path: path
                .iter()
                .map(|h| (*h).into())
                .collect::<Vec<_>>()
                .try_into()
                .expect("short"),
            coinbase_tx_prefix: cb.prefix().to_vec().try_into().expect("fits"),
            coinbase_tx_suffix: cb.suffix().to_vec().try_into().expect("fits"),
        };
        self.ours.on_new_extended_mining_job(&ours).expect("ours");
        self.sri.on_new_extended_mining_job(sri).expect("sri");
    }

    fn prevhash(&mut self, job_id: u32, prev: [u8; 32]) {
        let (a, b) = prevhash(job_id, prev);
        self.ours.on_set_new_prev_hash(&a).expect("ours");
        self.sri.on_set_new_prev_hash(b).expect("sri");
    }

    fn submit(&mut self, s: &SubmitSharesExtended) -> String {
        let ours = ours_code(&validate_extended(&mut self.ours, s, 0));
        let sri = sri_code(&self.sri.validate_share(SubmitSharesExtendedOwned {
            channel_id: s.channel_id,
            sequence_number: s.sequence_number,
            job_id: s.job_id,
            nonce: s.nonce,
            ntime: s.ntime,
            version: s.version,
            extranonce: s.extranonce.as_slice().to_vec().try_into().expect("<= 32"),
        }));
        assert_eq!(ours, sri, "share {s:?}");
        ours
    }
}

#[test]
fn extended_shares_agree_with_sri() {
    let path: Vec<[u8; 32]> = (0..12u8).map(|i| [i.wrapping_mul(37); 32]).collect();
    let mut c = Ext::new();
    c.job(1, None, true, &path);
    c.prevhash(1, [0x22; 32]);
    c.job(2, Some(MIN_NTIME), false, &path[..3]);
    let mut seen = BTreeMap::<String, u32>::new();
    for n in 0..3000u32 {
        let mut s = SubmitSharesExtended {
            channel_id: 1,
            sequence_number: n,
            job_id: 1 + n % 2,
            nonce: n / 4,
            ntime: MIN_NTIME,
            version: VERSION,
            extranonce: B0_32::new(&(n % 4).to_le_bytes()).expect("4 bytes"),
        };
        match n % 89 {
            0 => s.job_id = 9,
            1 => s.extranonce = B0_32::new(&[1, 2, 3]).expect("3 bytes"),
            2 => s.version |= 0x0000_2000, // rolling: fine on job 1, not on job 2
            3 => s.version |= 0x4000_0000,
            4 => s.ntime = MIN_NTIME - 5,
            _ => {}
        }
        tally(&mut seen, n, || c.submit(&s));
    }
    c.job(3, None, true, &path);
    c.prevhash(3, [0x66; 32]);
    let s = SubmitSharesExtended {
        channel_id: 1,
        sequence_number: 0,
        job_id: 2,
        nonce: 0,
        ntime: MIN_NTIME,
        version: VERSION,
        extranonce: B0_32::new(&[0; 4]).expect("4 bytes"),
    };
    assert_eq!(c.submit(&s), "stale-share");
    assert_seen(
        &seen,
        &[
            "ok",
            "block",
            "difficulty-too-low",
            "duplicate-share",
            "invalid-job-id",
            "invalid-share",
            "bad-extranonce-size",
            "version-rolling-not-allowed",
            "invalid-non-rollable-version-bit",
        ],
    );
}

#[test]
fn difference_hash_equal_to_target() {
    // find the hash of one share, then make it the channel's target
    let mut probe = Std::new([0xff; 32]);
    probe.job(1, None, [0x11; 32]);
    probe.prevhash(1, [0x22; 32]);
    let hash = validate_standard(&mut probe.ours, &std_share(1, 5), 0)
        .expect("max target")
        .hash;
    let mut c = Std::new(hash);
    c.job(1, None, [0x11; 32]);
    c.prevhash(1, [0x22; 32]);
    let (ours, sri) = c.submit(std_share(1, 5));
    // unless it happens to be a block
    if ours != "block" {
        assert_eq!((ours.as_str(), sri.as_str()), ("ok", "difficulty-too-low"));
    }
}

#[test]
fn set_target_reaches_future_jobs_in_both() {
    let mut c = Std::new([0xff; 32]);
    c.job(1, None, [0x11; 32]);
    let hard = {
        let mut t = [0xff; 32];
        t[31] = 0;
        t[30] = 0;
        t
    };
    c.ours
        .set_target(Target::from_le_bytes(hard))
        .expect("non-zero");
    c.sri
        .set_target(bitcoin::Target::from_le_bytes(hard))
        .expect("non-zero");
    c.prevhash(1, [0x22; 32]);
    // both apply SetTarget to a future job not yet activated (spec 5.3.21)
    assert_eq!(
        c.ours.job(1).expect("job").target(),
        Target::from_le_bytes(hard)
    );
    let rejected = (0..1000)
        .map(|n| agree(&mut c, std_share(1, n)))
        .filter(|v| v == "difficulty-too-low")
        .count();
    assert!(rejected > 900);
}

#[test]
fn difference_active_job_before_prevhash() {
    let mut c = Std::new(target());
    let (a, b) = std_job(1, Some(MIN_NTIME), [0x11; 32]);
    assert!(matches!(
        c.ours.on_new_mining_job(&a),
        Err(ChannelError::NoPrevHash { .. })
    ));
    c.sri.on_new_mining_job(b).expect("SRI stores it");
    let (_, sri) = c.submit(std_share(1, 0));
    assert_eq!(sri, "NoChainTip");
}

/// SRI's server channel builds the job from a template; ours records the `NewMiningJob` SRI
/// would send (the server side of our channel records what it sends).
#[test]
fn standard_shares_agree_with_sri_server_channel() {
    let mut alloc = ExtranonceAllocator::new(vec![1], 8, 4).expect("valid");
    let mut sri = SriServerStandard::new_for_pool(
        1,
        "u".into(),
        alloc.allocate_standard().expect("free slot"),
        bitcoin::Target::from_le_bytes([0xff; 32]),
        1.0,
        100,
        1e9,
        "strata".into(),
        None,
    )
    .expect("valid");
    sri.set_target(bitcoin::Target::from_le_bytes(target()))
        .expect("non-zero");
    let mut ours = Channel::new_standard(
        1,
        sri.get_extranonce_prefix(),
        Target::from_le_bytes(target()),
        ChannelConfig::default(),
    )
    .expect("valid");
    let template = |id: u64, future: bool| NewTemplateOwned {
        template_id: id,
        future_template: future,
        version: VERSION,
        coinbase_tx_version: 2,
        coinbase_prefix: vec![3, 0x40, 0xd2, 0x0c].try_into().expect("short"),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: 312_500_000,
        coinbase_tx_outputs_count: 0,
        coinbase_tx_outputs: Vec::new().try_into().expect("empty"),
        coinbase_tx_locktime: 0,
        merkle_path: Vec::new().try_into().expect("empty"),
    };
    let outputs = vec![bitcoin::TxOut {
        value: bitcoin::Amount::from_sat(312_500_000),
        script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
    }];
    let record = |ours: &mut Channel, m: &NewMiningJobOwned| {
        ours.on_new_mining_job(&NewMiningJob {
            channel_id: 1,
            job_id: m.job_id,
            min_ntime: m.min_ntime.clone().into_inner(),
            version: m.version,
            merkle_root: U256(m.merkle_root.to_array()),
        })
        .expect("ours records SRI's job");
    };
    let activate = |sri: &mut SriServerStandard, ours: &mut Channel, t: u64, prev: [u8; 32]| {
        let job_id = sri
            .get_future_job_id_from_template_id(t)
            .expect("future job");
        sri.on_set_new_prev_hash(SetNewPrevHashTdp {
            template_id: t,
            prev_hash: prev.into(),
            header_timestamp: MIN_NTIME,
            n_bits: NBITS,
            target: [0; 32].into(),
        })
        .expect("sri");
        ours.on_set_new_prev_hash(&SetNewPrevHash {
            channel_id: 1,
            job_id,
            prev_hash: U256(prev),
            min_ntime: MIN_NTIME,
            nbits: NBITS,
        })
        .expect("ours");
        job_id
    };
    sri.on_new_template(template(1, true), outputs.clone())
        .expect("sri job");
    let j1 = sri.get_future_job_id_from_template_id(1).expect("future");
    record(
        &mut ours,
        sri.get_future_job(j1).expect("job").get_job_message(),
    );
    activate(&mut sri, &mut ours, 1, [0x22; 32]);
    sri.on_new_template(template(2, false), outputs.clone())
        .expect("active job");
    let active = sri
        .get_active_job()
        .expect("active")
        .get_job_message()
        .clone();
    let j2 = active.job_id;
    record(&mut ours, &active);
    let submit = |sri: &mut SriServerStandard, ours: &mut Channel, s: SubmitSharesStandard| {
        let a = ours_code(&validate_standard(ours, &s, 0));
        let b = sri_server_code(&sri.validate_share(sri_std_share(&s)));
        assert_eq!(a, b, "share {s:?}");
        a
    };
    let mut seen = BTreeMap::<String, u32>::new();
    for n in 0..2000u32 {
        let mut s = std_share(if n % 2 == 0 { j1 } else { j2 }, n / 2);
        match n % 97 {
            0 => s.job_id = 7777,
            1 => s.ntime = MIN_NTIME - 1,
            2 => s.version |= 0x8000_0000,
            _ => {}
        }
        tally(&mut seen, n, || submit(&mut sri, &mut ours, s.clone()));
    }
    sri.on_new_template(template(3, true), outputs)
        .expect("future");
    let j3 = sri.get_future_job_id_from_template_id(3).expect("future");
    record(
        &mut ours,
        sri.get_future_job(j3).expect("job").get_job_message(),
    );
    activate(&mut sri, &mut ours, 3, [0x33; 32]);
    assert_eq!(submit(&mut sri, &mut ours, std_share(j1, 1)), "stale-share");
    assert_seen(&seen, STANDARD_VERDICTS);
}
