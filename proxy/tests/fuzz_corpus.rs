//! The committed seeds of the proxy's fuzz targets (`fuzz/seeds/proxy_sv1_session`,
//! `fuzz/seeds/proxy_sv2_session`, `fuzz/seeds/proxy_upstream_session`,
//! `fuzz/seeds/proxy_failover`, `fuzz/seeds/proxy_hub`), replayed through the harnesses the targets call, so every
//! reproducer stays fixed under a plain `cargo test`.
//!
//! `cargo test -p strata-proxy --test fuzz_corpus -- --ignored write_seeds` regenerates the
//! generated seeds: scripted sessions in each harness's input format (real firmware lines and
//! frames, hub answers, work on the same tip, new tips and new epochs, ticks, pool answers;
//! failover: pools dying, coming back, probes, hashrate updates and time steps; hub: miners
//! joining and leaving across channels and pools, shares and their results, reports and
//! timers).

use std::path::{Path, PathBuf};

use strata_protocol::common::{Reconnect, SetupConnection, SetupConnectionSuccess};
use strata_protocol::extensions::{RequestExtensions, RequestExtensionsSuccess};
use strata_protocol::mining::{
    CloseChannel, NewExtendedMiningJob, OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess, OpenMiningChannelError, OpenStandardMiningChannel,
    SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash, SetTarget, SubmitSharesError,
    SubmitSharesStandard, SubmitSharesSuccess, UpdateChannel,
};
use strata_protocol::wire::{Str0_255, B0_32, B0_64K, U256};
use strata_protocol::Message;
use strata_proxy::fuzzing;

const SV1: &str = "proxy_sv1_session";
const SV2: &str = "proxy_sv2_session";
const UPSTREAM: &str = "proxy_upstream_session";
const FAILOVER: &str = "proxy_failover";
const HUB: &str = "proxy_hub";

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = seeds_dir(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed file");
        // named in the output of a failing replay
        eprintln!("replaying {}", path.display());
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn proxy_sv1_session_seeds_replay() {
    let n = replay(SV1, fuzzing::sv1_session);
    assert!(n >= sv1_scripts().len(), "{n} seeds");
}

#[test]
fn proxy_sv2_session_seeds_replay() {
    let n = replay(SV2, fuzzing::sv2_session);
    assert!(n >= sv2_scripts().len(), "{n} seeds");
}

#[test]
fn proxy_upstream_session_seeds_replay() {
    let n = replay(UPSTREAM, fuzzing::upstream_session);
    assert!(n >= upstream_scripts().len(), "{n} seeds");
}

#[test]
fn proxy_failover_seeds_replay() {
    let n = replay(FAILOVER, fuzzing::failover);
    assert!(n >= failover_scripts().len(), "{n} seeds");
}

#[test]
fn proxy_hub_seeds_replay() {
    let n = replay(HUB, fuzzing::hub);
    assert!(n >= hub_scripts().len(), "{n} seeds");
}

#[test]
#[ignore = "regenerates fuzz/seeds/proxy_*"]
fn write_seeds() {
    for (target, scripts) in [
        (SV1, sv1_scripts()),
        (SV2, sv2_scripts()),
        (UPSTREAM, upstream_scripts()),
        (FAILOVER, failover_scripts()),
        (HUB, hub_scripts()),
    ] {
        let dir = seeds_dir(target);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, script) in scripts {
            std::fs::write(dir.join(name), script).expect("write seed");
        }
    }
}

#[test]
fn generated_scripts_run() {
    for (_, script) in sv1_scripts() {
        fuzzing::sv1_session(&script);
    }
    for (_, script) in sv2_scripts() {
        fuzzing::sv2_session(&script);
    }
    for (_, script) in upstream_scripts() {
        fuzzing::upstream_session(&script);
    }
    for (_, script) in failover_scripts() {
        fuzzing::failover(&script);
    }
    for (_, script) in hub_scripts() {
        fuzzing::hub(&script);
    }
}

// ---------------------------------------------------------------------------------------------
// script steps (see strata_proxy::fuzzing for the formats)
// ---------------------------------------------------------------------------------------------

/// SV1: one line.
fn line(script: &mut Vec<u8>, text: &str) {
    let len = u8::try_from(text.len()).expect("a line of at most 255 bytes");
    script.push(0);
    script.push(len);
    script.extend_from_slice(text.as_bytes());
}

/// SV2 downstream and upstream: one message's frame (at most 255 bytes per step).
fn frames(script: &mut Vec<u8>, msg: impl Into<Message>) {
    let mut buf = Vec::new();
    msg.into().encode_frame(&mut buf);
    for chunk in buf.chunks(255) {
        script.push(0);
        script.push(u8::try_from(chunk.len()).expect("chunk of 255"));
        script.extend_from_slice(chunk);
    }
}

/// Downstream: the hub's answer to a join (`b % 4 == 3` refuses; miner id `b`).
const SLOT: u8 = 2;
/// Downstream: new work (`b % 4`: 0 same tip, 1 new tip, 2 new epoch with layout `b >> 2`,
/// 3 none; bit 5 forbids version rolling, bit 7 makes the upstream target hard).
const WORK: u8 = 3;
/// Downstream: a tick `4 * b` seconds later.
const TICK: u8 = 4;
/// SV2 downstream: flush the acknowledgements.
const FLUSH: u8 = 5;

fn s(v: &str) -> Str0_255 {
    Str0_255::new(v).expect("short")
}

// ---------------------------------------------------------------------------------------------
// SV1
// ---------------------------------------------------------------------------------------------

const CONFIGURE: &str = r#"{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":16,"minimum-difficulty.value":2}]}"#;
const SUBSCRIBE: &str =
    r#"{"id":2,"method":"mining.subscribe","params":["bmminer/2.0.0","00000005"]}"#;
const AUTHORIZE: &str = r#"{"id":3,"method":"mining.authorize","params":["farm.rig1","x"]}"#;
const EXTRANONCE_SUBSCRIBE: &str = r#"{"id":4,"method":"mining.extranonce.subscribe","params":[]}"#;

fn submit(id: u32, job: &str, extranonce2: &str, nonce: u32, version: Option<u32>) -> String {
    let version = version.map_or(String::new(), |v| format!(",\"{v:08x}\""));
    format!(
        r#"{{"id":{id},"method":"mining.submit","params":["farm.rig1","{job}","{extranonce2}","6553f100","{nonce:08x}"{version}]}}"#
    )
}

fn sv1_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    // An Antminer: configure, subscribe, authorize, shares on two tips and across a new
    // epoch with another extranonce layout (it subscribed to extranonce changes).
    let mut a = vec![0];
    line(&mut a, CONFIGURE);
    line(&mut a, SUBSCRIBE);
    line(&mut a, AUTHORIZE);
    a.extend_from_slice(&[SLOT, 5, WORK, 0]);
    for n in 0..6 {
        line(&mut a, &submit(10 + n, "1", "00000001", n * 7919, None));
    }
    line(&mut a, &submit(16, "1", "00000001", 0, None)); // duplicate
    line(&mut a, &submit(17, "1", "00000002", 1, Some(0x2000_6000)));
    a.extend_from_slice(&[WORK, 1]);
    line(&mut a, &submit(18, "1", "00000003", 2, None)); // stale
    line(&mut a, &submit(19, "2", "00000003", 3, None));
    a.extend_from_slice(&[WORK, 2 | (1 << 2)]); // new epoch: 1-byte id, 2-byte extranonce2
    line(&mut a, &submit(20, "2", "00000004", 4, None)); // retired job
    line(&mut a, &submit(21, "3", "0004", 5, None));
    line(&mut a, &submit(22, "3", "00000004", 6, None)); // wrong extranonce2 size
    a.extend_from_slice(&[TICK, 30, TICK, 255]);
    line(&mut a, &submit(23, "4", "0005", 7, None));
    out.push(("antminer_epochs", a));

    // Whatsminer order: subscribe before authorize, extranonce.subscribe as a method, work
    // that arrives before the hub's answer, a second subscribe.
    let mut b = vec![0];
    b.extend_from_slice(&[WORK, 0]);
    line(&mut b, SUBSCRIBE);
    line(&mut b, EXTRANONCE_SUBSCRIBE);
    line(&mut b, AUTHORIZE);
    b.extend_from_slice(&[SLOT, 0x40]);
    line(&mut b, &submit(5, "1", "0000000a", 11, None));
    line(&mut b, SUBSCRIBE);
    line(&mut b, &submit(6, "2", "0000000a", 12, None));
    b.extend_from_slice(&[WORK, 2 | (2 << 2)]);
    line(&mut b, &submit(7, "3", "00000000000000bb", 13, None));
    out.push(("whatsminer_resubscribe", b));

    // No extranonce subscription: a new extranonce closes the miner with a reconnect.
    let mut c = vec![0];
    line(&mut c, SUBSCRIBE);
    line(&mut c, AUTHORIZE);
    c.extend_from_slice(&[SLOT, 9, WORK, 0, WORK, 2 | (1 << 2)]);
    line(&mut c, &submit(5, "1", "00000001", 1, None));
    out.push(("extranonce_change_without_subscription", c));

    // The hub is full.
    let mut d = vec![0];
    line(&mut d, SUBSCRIBE);
    d.extend_from_slice(&[WORK, 0, SLOT, 3]);
    line(&mut d, AUTHORIZE);
    out.push(("join_refused", d));

    // The upstream goes away and comes back; the miner lowers its difficulty.
    let mut e = vec![0];
    line(&mut e, SUBSCRIBE);
    line(&mut e, AUTHORIZE);
    e.extend_from_slice(&[SLOT, 1, WORK, 0, WORK, 3]);
    line(&mut e, &submit(5, "1", "00000001", 1, None));
    e.extend_from_slice(&[WORK, 1 | 0x80]);
    line(
        &mut e,
        r#"{"id":6,"method":"mining.suggest_difficulty","params":[0.5]}"#,
    );
    for n in 0..4 {
        line(&mut e, &submit(7 + n, "3", "00000001", n, None));
    }
    out.push(("upstream_gone_and_back", e));

    // Default difficulty: every share is too easy, vardiff retargets.
    let mut f = vec![1];
    line(&mut f, CONFIGURE);
    line(&mut f, SUBSCRIBE);
    line(&mut f, AUTHORIZE);
    f.extend_from_slice(&[SLOT, 2, WORK, 0x20]); // same tip, no version rolling
    for n in 0..8 {
        line(&mut f, &submit(5 + n, "1", "00000001", n, None));
        f.extend_from_slice(&[TICK, 15]);
    }
    out.push(("vardiff_low_difficulty", f));

    // An extranonce layout that does not fit 32 bytes.
    let mut g = vec![0];
    line(&mut g, SUBSCRIBE);
    g.extend_from_slice(&[SLOT, 4, WORK, 2 | (6 << 2)]);
    line(&mut g, AUTHORIZE);
    out.push(("unusable_extranonce_layout", g));

    // Garbage and malformed requests until the session gives up.
    let mut h = vec![0];
    line(
        &mut h,
        r#"{"id":1,"method":"mining.submit","params":["a"]}"#,
    );
    line(&mut h, r#"{"id":2,"method":"mining.nope","params":[]}"#);
    line(
        &mut h,
        r#"{"id":3,"method":"mining.subscribe","params":[1,2,3,4]}"#,
    );
    for _ in 0..20 {
        line(&mut h, "{\"id\":");
    }
    line(&mut h, SUBSCRIBE);
    out.push(("malformed_lines", h));

    // Shares before subscribing, from an unknown worker, on unknown jobs.
    let mut k = vec![0];
    line(&mut k, &submit(1, "1", "00000001", 1, None));
    line(&mut k, SUBSCRIBE);
    k.extend_from_slice(&[SLOT, 6, WORK, 0]);
    line(
        &mut k,
        r#"{"id":2,"method":"mining.submit","params":["other","1","00000001","6553f100","00000001"]}"#,
    );
    line(&mut k, AUTHORIZE);
    line(&mut k, &submit(3, "zz", "00000001", 1, None));
    line(&mut k, &submit(4, "ffffffff", "00000001", 1, None));
    out.push(("early_and_unknown_shares", k));
    out
}

// ---------------------------------------------------------------------------------------------
// SV2 downstream
// ---------------------------------------------------------------------------------------------

fn setup(flags: u32) -> SetupConnection {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: s("proxy"),
        endpoint_port: 34255,
        vendor: s("bitaxe"),
        hardware_version: s("ultra"),
        firmware: s("2.4.0"),
        device_id: s("axe-1"),
    }
}

fn open_standard(request_id: u32, user: &str, hashrate: f32) -> OpenStandardMiningChannel {
    OpenStandardMiningChannel {
        request_id,
        user_identity: s(user),
        nominal_hash_rate: hashrate,
        max_target: U256([0xff; 32]),
    }
}

fn standard_share(channel_id: u32, seq: u32, job_id: u32) -> SubmitSharesStandard {
    SubmitSharesStandard {
        channel_id,
        sequence_number: seq,
        job_id,
        nonce: seq.wrapping_mul(7919),
        ntime: 1_700_000_000,
        version: 0x2000_0000,
    }
}

fn sv2_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    // A Bitaxe: setup, one channel, shares on two tips and a new epoch, acks, ticks.
    let mut a = vec![];
    frames(&mut a, setup(0));
    frames(&mut a, open_standard(1, "farm.axe1", 1e3));
    a.extend_from_slice(&[SLOT, 6, WORK, 0]);
    for seq in 1..6 {
        frames(&mut a, standard_share(1, seq, 1));
    }
    frames(&mut a, standard_share(1, 5, 1)); // duplicate
    a.push(FLUSH);
    a.extend_from_slice(&[WORK, 1]);
    frames(&mut a, standard_share(1, 6, 1)); // stale
    frames(&mut a, standard_share(1, 7, 2));
    a.extend_from_slice(&[WORK, 2 | (1 << 2)]);
    frames(&mut a, standard_share(1, 8, 3));
    a.extend_from_slice(&[TICK, 20, TICK, 255, FLUSH]);
    out.push(("bitaxe_epochs", a));

    // Several channels on one connection, opened before the hub answers; updates, a close,
    // shares on closed and unknown channels.
    let mut b = vec![];
    frames(&mut b, setup(0));
    for r in 0..3 {
        frames(&mut b, open_standard(r, "farm.rig", 1e12));
    }
    b.extend_from_slice(&[WORK, 0x80, SLOT, 1]); // hard upstream target
    frames(
        &mut b,
        UpdateChannel {
            channel_id: 2,
            nominal_hash_rate: 1e14,
            maximum_target: U256([0x0f; 32]),
        },
    );
    frames(
        &mut b,
        CloseChannel {
            channel_id: 3,
            reason_code: s("bye"),
        },
    );
    frames(&mut b, standard_share(3, 1, 1));
    frames(&mut b, standard_share(9, 1, 1));
    frames(&mut b, standard_share(1, 1, 1));
    b.extend_from_slice(&[FLUSH, WORK, 1 | 0x20, TICK, 100]);
    out.push(("many_channels", b));

    // Extended channels and extensions are refused; the hub is full.
    let mut c = vec![];
    frames(&mut c, setup(0));
    frames(
        &mut c,
        RequestExtensions {
            request_id: 1,
            requested_extensions: vec![2u16].try_into().expect("one"),
        },
    );
    frames(
        &mut c,
        OpenExtendedMiningChannel {
            request_id: 1,
            user_identity: s("proxy"),
            nominal_hash_rate: 1e6,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 8,
        },
    );
    frames(&mut c, open_standard(2, "farm.rig", 1e9));
    c.extend_from_slice(&[WORK, 0, SLOT, 3]);
    frames(&mut c, open_standard(3, "farm.rig", 1e9));
    c.extend_from_slice(&[SLOT, 8]);
    out.push(("extended_refused_hub_full", c));

    // Protocol errors: a share before setup; unsupported flags; a second setup.
    let mut d = vec![];
    frames(&mut d, standard_share(1, 1, 1));
    frames(&mut d, setup(0));
    out.push(("share_before_setup", d));
    let mut e = vec![];
    frames(&mut e, setup(0b111));
    out.push(("unsupported_flags", e));
    let mut f = vec![];
    frames(&mut f, setup(0));
    frames(&mut f, setup(0));
    out.push(("second_setup", f));

    // Bad opens (empty user, NaN hashrate, zero max target), then no upstream.
    let mut g = vec![];
    frames(&mut g, setup(0));
    frames(&mut g, open_standard(1, " ", 1e9));
    frames(&mut g, open_standard(2, "farm.rig", f32::NAN));
    frames(
        &mut g,
        OpenStandardMiningChannel {
            max_target: U256([0; 32]),
            ..open_standard(3, "farm.rig", 1e9)
        },
    );
    g.extend_from_slice(&[WORK, 3, SLOT, 0]);
    frames(&mut g, open_standard(4, "farm.rig", 1e9));
    frames(&mut g, standard_share(1, 1, 1));
    g.extend_from_slice(&[WORK, 0]);
    out.push(("bad_opens_no_upstream", g));

    // A layout without room for a channel counter, and one too long for 32 bytes.
    let mut h = vec![];
    frames(&mut h, setup(0));
    frames(&mut h, open_standard(1, "farm.rig", 1e9));
    h.extend_from_slice(&[SLOT, 2, WORK, 2 | (7 << 2)]);
    frames(&mut h, open_standard(2, "farm.rig", 1e9));
    h.extend_from_slice(&[WORK, 2 | (6 << 2)]);
    frames(&mut h, open_standard(3, "farm.rig", 1e9));
    out.push(("tight_extranonce_layouts", h));

    // A truncated frame.
    let mut k = vec![];
    frames(&mut k, setup(0));
    k.extend_from_slice(&[0, 6, 0, 0, 0x1a, 0xff, 0xff, 0xff]);
    out.push(("truncated_frame", k));
    out
}

// ---------------------------------------------------------------------------------------------
// upstream
// ---------------------------------------------------------------------------------------------

/// Upstream: a share to forward (its argument shapes it; extranonce `b % 40` bytes).
const SUBMIT: u8 = 2;
/// Upstream: time passes (`b` seconds) and the deadline is checked.
const WAIT: u8 = 4;
/// Upstream: the connection ends.
const END: u8 = 5;

/// Upstream: a hashrate update.
fn hashrate(script: &mut Vec<u8>, h: f32) {
    script.push(3);
    script.extend_from_slice(&h.to_le_bytes());
}

const CHANNEL: u32 = 7;

fn pool_open(script: &mut Vec<u8>, group: u32) {
    frames(
        script,
        SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        },
    );
    frames(
        script,
        RequestExtensionsSuccess {
            request_id: 1,
            supported_extensions: vec![2u16].try_into().expect("one"),
        },
    );
    frames(
        script,
        OpenExtendedMiningChannelSuccess {
            request_id: 1,
            channel_id: CHANNEL,
            target: U256([0xff; 32]),
            extranonce_size: 12,
            extranonce_prefix: B0_32::new(&[1, 2, 3, 4]).expect("4 bytes"),
            group_channel_id: group,
        },
    );
}

fn job(channel_id: u32, job_id: u32, min_ntime: Option<u32>) -> NewExtendedMiningJob {
    NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: vec![U256([9; 32])].try_into().expect("one"),
        coinbase_tx_prefix: B0_64K::new(vec![1u8; 40]).expect("40 bytes"),
        coinbase_tx_suffix: B0_64K::new(vec![2u8; 30]).expect("30 bytes"),
    }
}

fn prev_hash(channel_id: u32, job_id: u32, b: u8) -> SetNewPrevHash {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256([b; 32]),
        min_ntime: 1_700_000_000,
        nbits: 0x207f_ffff,
    }
}

fn success(last: u32, count: u32) -> SubmitSharesSuccess {
    SubmitSharesSuccess {
        channel_id: CHANNEL,
        last_sequence_number: last,
        new_submits_accepted_count: count,
        new_shares_sum: u64::from(count),
    }
}

fn share_error(seq: u32) -> SubmitSharesError {
    SubmitSharesError {
        channel_id: CHANNEL,
        sequence_number: seq,
        error_code: s("stale-share"),
    }
}

fn upstream_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    // A pool session: open, jobs, shares answered by batch and one by one, a new target and
    // extranonce prefix, then the connection ends with shares pending.
    let mut a = vec![];
    a.extend_from_slice(&[SUBMIT, 12]); // before the channel is open
    pool_open(&mut a, 0);
    frames(&mut a, job(CHANNEL, 1, None));
    frames(&mut a, prev_hash(CHANNEL, 1, 5));
    for b in [12, 24, 36, 12, 13] {
        a.extend_from_slice(&[SUBMIT, b]);
    }
    a.extend_from_slice(&[SUBMIT, 39]); // extranonce of the wrong size
    frames(&mut a, success(1, 2));
    frames(&mut a, share_error(2));
    frames(&mut a, share_error(2)); // again: not pending
    frames(&mut a, success(1, 2)); // again: nothing new
    frames(
        &mut a,
        SetTarget {
            channel_id: CHANNEL,
            maximum_target: U256([0x0f; 32]),
        },
    );
    frames(
        &mut a,
        SetExtranoncePrefix {
            channel_id: CHANNEL,
            extranonce_prefix: B0_32::new(&[9, 9, 9, 9]).expect("4 bytes"),
        },
    );
    frames(&mut a, job(CHANNEL, 2, Some(1_700_000_010)));
    hashrate(&mut a, 2e15);
    hashrate(&mut a, f32::NAN);
    a.extend_from_slice(&[SUBMIT, 12, WAIT, 100, END, SUBMIT, 12]);
    out.push(("pool_session_end", a));

    // A group channel: jobs and prevhashes addressed to the group.
    let mut b = vec![];
    pool_open(&mut b, 100);
    frames(
        &mut b,
        SetGroupChannel {
            group_channel_id: 100,
            channel_ids: vec![CHANNEL].try_into().expect("one"),
        },
    );
    frames(&mut b, job(100, 1, None));
    frames(&mut b, prev_hash(100, 1, 6));
    frames(&mut b, job(55, 2, None)); // another channel's
    b.extend_from_slice(&[SUBMIT, 12, SUBMIT, 12]);
    frames(&mut b, success(0, 1));
    frames(
        &mut b,
        CloseChannel {
            channel_id: 100,
            reason_code: s("maintenance"),
        },
    );
    b.extend_from_slice(&[SUBMIT, 12]);
    frames(&mut b, success(1, 1)); // after the end
    out.push(("group_channel_closed", b));

    // Two channels on the connection (the harness asks for two): the second opens, the pool
    // groups both, jobs and prevhashes go to the group, shares and hashrate go to each channel
    // (a share argument of 128 and more picks the second channel), then a third request id
    // is answered (never asked for: the session ends).
    let mut t = vec![];
    pool_open(&mut t, 0);
    frames(
        &mut t,
        OpenExtendedMiningChannelSuccess {
            request_id: 2,
            channel_id: CHANNEL + 1,
            target: U256([0xff; 32]),
            extranonce_size: 12,
            extranonce_prefix: B0_32::new(&[5, 6, 7, 8]).expect("4 bytes"),
            group_channel_id: 0,
        },
    );
    frames(
        &mut t,
        SetGroupChannel {
            group_channel_id: 100,
            channel_ids: vec![CHANNEL, CHANNEL + 1].try_into().expect("two"),
        },
    );
    frames(&mut t, job(100, 1, None));
    frames(&mut t, prev_hash(100, 1, 5));
    t.extend_from_slice(&[SUBMIT, 12, SUBMIT, 132, SUBMIT, 172]);
    frames(&mut t, success(0, 1));
    frames(
        &mut t,
        SubmitSharesSuccess {
            channel_id: CHANNEL + 1,
            ..success(0, 1)
        },
    );
    hashrate(&mut t, f32::from_le_bytes([1, 0, 0x80, 0x4f]));
    frames(
        &mut t,
        OpenMiningChannelError {
            request_id: 3,
            error_code: s("max-channels"),
        },
    );
    t.extend_from_slice(&[SUBMIT, 132]);
    out.push(("two_channels_grouped", t));

    // The pool refuses, or reconnects us, or never answers.
    let mut c = vec![];
    frames(
        &mut c,
        SetupConnectionSuccess {
            used_version: 3,
            flags: 0,
        },
    );
    c.extend_from_slice(&[SUBMIT, 12]);
    out.push(("wrong_version", c));
    let mut d = vec![];
    pool_open(&mut d, 0);
    frames(&mut d, job(CHANNEL, 1, None));
    frames(&mut d, prev_hash(CHANNEL, 1, 7));
    d.extend_from_slice(&[SUBMIT, 12]);
    frames(
        &mut d,
        Reconnect {
            new_host: s("pool2.example"),
            new_port: 3336,
        },
    );
    out.push(("reconnect", d));
    let mut e = vec![];
    e.extend_from_slice(&[WAIT, 5, WAIT, 6, SUBMIT, 12]);
    out.push(("setup_timeout", e));
    let mut f = vec![];
    pool_open(&mut f, 0);
    f.extend_from_slice(&[SUBMIT, 12, WAIT, 10, WAIT, 10]);
    out.push(("no_job_timeout", f));

    // A prevhash for a job never sent; a too-small extranonce.
    let mut g = vec![];
    pool_open(&mut g, 0);
    frames(&mut g, prev_hash(CHANNEL, 42, 8));
    out.push(("prevhash_unknown_job", g));
    let mut h = vec![];
    frames(
        &mut h,
        SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        },
    );
    frames(
        &mut h,
        OpenExtendedMiningChannelSuccess {
            request_id: 1,
            channel_id: CHANNEL,
            target: U256([0xff; 32]),
            extranonce_size: 4,
            extranonce_prefix: B0_32::new(&[1; 30]).expect("30 bytes"),
            group_channel_id: 0,
        },
    );
    out.push(("extranonce_too_small", h));

    // Many shares the pool never answers, acknowledged across a wide sequence window.
    let mut k = vec![];
    pool_open(&mut k, 0);
    frames(&mut k, job(CHANNEL, 1, None));
    frames(&mut k, prev_hash(CHANNEL, 1, 9));
    for n in 0..40u8 {
        k.extend_from_slice(&[SUBMIT, 12 + (n % 2)]);
    }
    frames(&mut k, success(u32::MAX, 3));
    frames(&mut k, success(30, 31));
    out.push(("many_pending", k));
    out
}

// ---------------------------------------------------------------------------------------------
// failover (see strata_proxy::fuzzing::failover)
// ---------------------------------------------------------------------------------------------

/// Connection `c` (by its place among the live ones) opens channel `ch`.
const OPENED: u8 = 0;
/// Connection `c` gets work on channel `ch`.
const F_WORK: u8 = 1;
/// Connection `c`'s pool refuses channel `ch`.
const REFUSED: u8 = 2;
/// Connection `c` gets a new extranonce prefix.
const PREFIX: u8 = 3;
/// Connection `c` ends (argument: bit 0 a redirect; jitter `x / 256`).
const ENDED: u8 = 4;
/// A hub command (two arguments).
const COMMAND: u8 = 5;
/// `x << y` ms pass.
const STEP: u8 = 6;
/// Time jumps to the next wake-up.
const WAKE: u8 = 7;

/// Connection `c` opens channel 0 and gets work on it.
fn up(script: &mut Vec<u8>, c: u8) {
    script.extend_from_slice(&[OPENED, c, 0, F_WORK, c, 0]);
}

fn failover_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    // Two pools: the primary dies, the backup takes over, the primary is probed, holds and
    // takes over again; the backup drains.
    let mut a = vec![1];
    up(&mut a, 0);
    a.extend_from_slice(&[STEP, 10, 10, ENDED, 0, 128]);
    up(&mut a, 0);
    a.extend_from_slice(&[WAKE]);
    up(&mut a, 1);
    a.extend_from_slice(&[STEP, 200, 4, WAKE, ENDED, 0, 0]);
    out.push(("two_pools_fail_over_and_back", a));

    // Three pools, every one failing in turn with backoff, then one comes back; hashrate
    // updates and more channels on the way (one of them refused).
    let mut b = vec![2];
    b.extend_from_slice(&[COMMAND, 0, 10, COMMAND, 5, 0]);
    for _ in 0..3 {
        b.extend_from_slice(&[ENDED, 0, 40]);
    }
    for _ in 0..5 {
        b.extend_from_slice(&[WAKE, ENDED, 0, 200]);
    }
    b.extend_from_slice(&[WAKE]);
    up(&mut b, 0);
    b.extend_from_slice(&[OPENED, 0, 1, REFUSED, 0, 2, PREFIX, 0, 1, COMMAND, 2, 255]);
    b.extend_from_slice(&[COMMAND, 2, 30, STEP, 255, 6, WAKE]);
    out.push(("every_pool_down_then_one_returns", b));

    // A probe that opens but sends no work for a long while, then the active pool dies: the
    // open probe takes over; a redirect; events for unknown connections.
    let mut c = vec![1];
    c.extend_from_slice(&[ENDED, 0, 0]);
    up(&mut c, 0);
    c.extend_from_slice(&[WAKE, OPENED, 1, 0, STEP, 255, 8, ENDED, 0, 0, F_WORK, 0, 0]);
    c.extend_from_slice(&[ENDED, 0, 1, WAKE, OPENED, 9, 0, ENDED, 7, 0]);
    out.push(("probe_without_work_then_active_dies", c));

    // Four pools without return to the preferred one.
    let mut d = vec![3 | 4];
    d.extend_from_slice(&[ENDED, 0, 0, ENDED, 0, 0]);
    up(&mut d, 0);
    d.extend_from_slice(&[STEP, 255, 11, WAKE, ENDED, 0, 9, STEP, 1, 0]);
    up(&mut d, 0);
    out.push(("four_pools_no_return", d));

    out
}

// ---------------------------------------------------------------------------------------------
// hub (see strata_proxy::fuzzing::hub)
// ---------------------------------------------------------------------------------------------

const H_JOIN: u8 = 0;
const H_LEAVE: u8 = 1;
const H_SHARE: u8 = 2;
const H_REPORT: u8 = 3;
const H_ACTIVE: u8 = 4;
const H_OPENED: u8 = 5;
const H_REFUSED: u8 = 6;
const H_WORK: u8 = 7;
const H_PREFIX: u8 = 8;
const H_RESULT: u8 = 9;
const H_DOWN: u8 = 10;
const H_STEP: u8 = 11;
const H_TIMER: u8 = 12;
const H_ABANDON: u8 = 13;

fn hub_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![];

    // Every miner on channel 0: joins before and after the pool is active, work, shares
    // forwarded and answered, reports and the first announcement, a miner leaving.
    let mut a = vec![0];
    a.extend_from_slice(&[H_JOIN, 1, H_JOIN, 2, H_ACTIVE, 0, H_WORK, 0, H_JOIN, 3]);
    for k in 0..6 {
        a.extend_from_slice(&[H_SHARE, k, H_RESULT, k % 3]);
    }
    a.extend_from_slice(&[H_REPORT, 0, 50, H_REPORT, 1, 80, H_TIMER, 0, H_STEP, 10, 10]);
    a.extend_from_slice(&[H_TIMER, 0, H_LEAVE, 1, H_REPORT, 0, 200, H_TIMER, 0]);
    out.push(("one_channel_join_share_report", a));

    // Two miners per channel: more channels asked for, one opened and one refused, a
    // waiting miner going away, work per channel, a new extranonce prefix.
    let mut b = vec![2];
    b.extend_from_slice(&[H_ACTIVE, 0x11]);
    for p in 1..=7 {
        b.extend_from_slice(&[H_JOIN, p]);
    }
    b.extend_from_slice(&[H_ABANDON, 0, H_OPENED, 1, H_REFUSED, 2, H_OPENED, 3]);
    b.extend_from_slice(&[
        H_WORK, 1, H_WORK, 3, H_PREFIX, 1, H_PREFIX, 0x81, H_WORK, 0x80,
    ]);
    for k in 0..8 {
        b.extend_from_slice(&[H_SHARE, k, H_REPORT, k, 40 + k]);
    }
    b.extend_from_slice(&[H_STEP, 250, 4, H_TIMER, 0, H_RESULT, 1, H_RESULT, 2]);
    out.push(("channels_open_refused_abandoned", b));

    // Failover seen from the hub: the active pool goes down with shares in flight, another
    // becomes active with another extranonce layout, stale shares, answers after the switch.
    let mut c = vec![1];
    c.extend_from_slice(&[H_ACTIVE, 0x02, H_JOIN, 1, H_JOIN, 2, H_OPENED, 1, H_WORK, 0]);
    c.extend_from_slice(&[H_SHARE, 0, H_SHARE, 1, H_SHARE, 0x80, H_DOWN, 0x80]);
    c.extend_from_slice(&[
        H_SHARE, 1, H_RESULT, 0, H_ACTIVE, 0x15, H_JOIN, 3, H_OPENED, 1,
    ]);
    c.extend_from_slice(&[H_WORK, 2, H_SHARE, 2, H_RESULT, 1, H_RESULT, 4, H_DOWN, 1]);
    c.extend_from_slice(&[H_OPENED, 0x81, H_ACTIVE, 0x27, H_LEAVE, 0, H_LEAVE, 0]);
    out.push(("failover_with_shares_in_flight", c));

    // A full route: shares beyond its capacity come back refused; layouts that leave no
    // room for miners.
    let mut d = vec![0];
    d.extend_from_slice(&[H_ACTIVE, 7, H_JOIN, 1, H_JOIN, 2, H_JOIN, 3]);
    for k in 0..20 {
        d.extend_from_slice(&[H_SHARE, k]);
    }
    d.extend_from_slice(&[H_ACTIVE, 5, H_JOIN, 4, H_ACTIVE, 6, H_JOIN, 5, H_RESULT, 0]);
    out.push(("full_route_and_unusable_layouts", d));

    out
}
