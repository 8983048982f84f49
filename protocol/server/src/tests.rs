//! The core driven by a toy role: a client mirror built from `strata-work`'s client-side
//! channels mines real shares against what the core sent.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_protocol::common::SetupConnection;
use strata_protocol::extensions::{RequestExtensions, FIELD_TYPE_USER_IDENTITY};
use strata_protocol::mining::{
    MiningMessage, OpenExtendedMiningChannel, OpenStandardMiningChannel, SubmitSharesExtended,
    SubmitSharesStandard, UpdateChannel,
};
use strata_protocol::wire::{Str0_255, B0_32, U256};
use strata_protocol::{Message, Tlv, EXTENSION_WORKER_HASHRATE};
use strata_work::channel::{Channel, ChannelConfig, Channels, ExtendedWork};
use strata_work::header::Header;
use strata_work::merkle::merkle_root_from_path;
use strata_work::target::Target;
use strata_work::vardiff::VardiffConfig;

use crate::{
    AckPolicy, JobSpec, Now, Output, PendingAck, Placement, PrevHashSpec, Request, ServerConfig,
    ServerCore,
};

/// Mainnet-like nBits: no test share is a block.
const HARD_BITS: u32 = 0x1d00_ffff;
const MIN_NTIME: u32 = 1_700_000_000;

#[derive(Debug, Clone, PartialEq)]
enum Out {
    Send(Message),
    Close(String),
}

impl Output for Out {
    fn send(msg: Message) -> Self {
        Out::Send(msg)
    }
    fn close(reason: String) -> Self {
        Out::Close(reason)
    }
}

fn names(out: &[Out]) -> Vec<&'static str> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(m) => Some(m.name()),
            Out::Close(_) => None,
        })
        .collect()
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix_ms: u64::from(MIN_NTIME) * 1000 + 100_000,
    }
}

fn config(acks: AckPolicy) -> Arc<ServerConfig> {
    Arc::new(ServerConfig {
        // channels start at about 64 hashes per share (nominal hashrate 0 = minimum)
        vardiff: VardiffConfig {
            min_difficulty: 2f64.powi(-26),
            ..VardiffConfig::default()
        },
        acks,
        ..ServerConfig::default()
    })
}

fn setup() -> Message {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::new("pool").unwrap(),
        endpoint_port: 3333,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into()
}

fn spec(min_ntime: Option<u32>) -> JobSpec {
    JobSpec {
        version: 0x2000_0000,
        version_rolling_allowed: true,
        work: ExtendedWork::new(
            Bytes::from_static(b"\x02\x00\x00\x00\x01coinbase-prefix"),
            Bytes::from_static(b"coinbase-suffix\x00\x00\x00\x00"),
            Arc::from(vec![[0x11u8; 32]]),
        ),
        min_ntime,
    }
}

const TIP: PrevHashSpec = PrevHashSpec {
    prev_hash: [0xaa; 32],
    nbits: HARD_BITS,
    min_ntime: MIN_NTIME,
};

/// The client's view, fed with what the core sent.
struct Client {
    channels: Channels,
    nonce: u32,
}

impl Client {
    fn feed(&mut self, out: &[Out]) {
        for o in out {
            let Out::Send(Message::Mining(mm)) = o else {
                continue;
            };
            match mm {
                MiningMessage::OpenStandardMiningChannelSuccess(s) => {
                    let c = Channel::new_standard(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::OpenExtendedMiningChannelSuccess(s) => {
                    let c = Channel::new_extended(
                        s.channel_id,
                        s.extranonce_prefix.as_slice(),
                        u8::try_from(s.extranonce_size).unwrap(),
                        Target::from_le_bytes(s.target.0),
                        ChannelConfig::default(),
                    )
                    .unwrap();
                    self.channels.insert(c).unwrap();
                }
                MiningMessage::NewMiningJob(j) => self.channels.on_new_mining_job(j).unwrap(),
                MiningMessage::NewExtendedMiningJob(j) => {
                    self.channels.on_new_extended_mining_job(j).unwrap()
                }
                MiningMessage::SetNewPrevHash(p) => self.channels.on_set_new_prev_hash(p).unwrap(),
                MiningMessage::SetTarget(t) => self.channels.on_set_target(t).unwrap(),
                _ => {}
            }
        }
    }

    /// A header on `channel_id`'s active job (merkle root given) at its target.
    fn header(&mut self, channel_id: u32, merkle_root: [u8; 32]) -> (u32, Header) {
        let c = self.channels.get(channel_id).unwrap();
        let job = c.active_job().unwrap();
        let prev = *c.prev_hash().unwrap();
        let mut h = Header {
            version: job.version(),
            prev_hash: prev.prev_hash,
            merkle_root,
            ntime: job.min_ntime().unwrap(),
            nbits: prev.nbits,
            nonce: self.nonce,
        };
        while !h.meets(&job.target()) {
            h.nonce += 1;
        }
        self.nonce = h.nonce + 1;
        (job.id(), h)
    }

    fn standard(&mut self, channel_id: u32, seq: u32) -> SubmitSharesStandard {
        let root = self
            .channels
            .get(channel_id)
            .unwrap()
            .active_job()
            .unwrap()
            .merkle_root();
        let (job_id, h) = self.header(channel_id, root);
        SubmitSharesStandard {
            channel_id,
            sequence_number: seq,
            job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
        }
    }

    fn extended(&mut self, channel_id: u32, seq: u32, extranonce: &[u8]) -> SubmitSharesExtended {
        let job = self.channels.get(channel_id).unwrap().active_job().unwrap();
        let work = job.extended().unwrap();
        let txid = work.txid(&[job.extranonce_prefix(), extranonce]);
        let root = merkle_root_from_path(txid, work.merkle_path.iter());
        let (job_id, h) = self.header(channel_id, root);
        SubmitSharesExtended {
            channel_id,
            sequence_number: seq,
            job_id,
            nonce: h.nonce,
            ntime: h.ntime,
            version: h.version,
            extranonce: B0_32::new(extranonce).unwrap(),
        }
    }
}

fn placement(prefix: &[u8], size: u16, group: bool) -> Placement<&'static str> {
    Placement {
        extranonce_prefix: prefix.to_vec(),
        extranonce_size: size,
        floor: Target::ZERO,
        group,
        data: "role data",
    }
}

#[test]
fn a_standard_channel_gets_jobs_its_shares_validate_and_acks_are_batched() {
    let t = now();
    let mut core: ServerCore<&str, u32> = ServerCore::new(config(AckPolicy::Batched));
    let mut out = vec![];
    assert!(core.on_message(setup(), &[], t, &mut out).is_none());
    assert_eq!(names(&out), ["SetupConnection.Success"]);
    assert!(core.is_ready());
    out.clear();
    let open = OpenStandardMiningChannel {
        request_id: 7,
        user_identity: Str0_255::new("alice").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
    };
    let Some(Request::Open(a)) = core.on_message(open.into(), &[], t, &mut out) else {
        panic!("an admission")
    };
    assert_eq!(a.user, "alice");
    let id = core
        .open(*a, placement(&[0, 0, 0, 1], 0, false), &mut out)
        .unwrap();
    let job = core.send_job(id, &spec(None), 41, &mut out).unwrap();
    assert!(core.send_prev_hash(id, job, &TIP, &mut out));
    assert_eq!(
        names(&out),
        [
            "OpenStandardMiningChannel.Success",
            "NewMiningJob",
            "SetNewPrevHash"
        ]
    );
    assert_eq!(core.state(id).unwrap().data, "role data");
    let mut client = Client {
        channels: Channels::new(),
        nonce: 0,
    };
    client.feed(&out);

    out.clear();
    let share = client.standard(id, 1);
    let Some(Request::Accepted(a)) = core.on_message(share.clone().into(), &[], t, &mut out) else {
        panic!("accepted")
    };
    assert_eq!(a.share.job_id, job);
    assert_eq!(
        core.job_data(id, job),
        Some(&41),
        "the role's data of the job"
    );
    let second = client.standard(id, 2);
    assert!(matches!(
        core.on_message(second.into(), &[], t, &mut out),
        Some(Request::Accepted(_))
    ));
    assert!(out.is_empty(), "acks wait for the flush");
    core.flush_acks(&mut out);
    match &out[..] {
        [Out::Send(Message::Mining(MiningMessage::SubmitSharesSuccess(s)))] => {
            assert_eq!((s.channel_id, s.last_sequence_number), (id, 2));
            assert_eq!(s.new_submits_accepted_count, 2);
        }
        other => panic!("{other:?}"),
    }
    // the same share again: refused at once, the connection stays
    out.clear();
    let Some(Request::Rejected { rejection, .. }) = core.on_message(share.into(), &[], t, &mut out)
    else {
        panic!("rejected")
    };
    assert_eq!(rejection.error_code(), "duplicate-share");
    assert_eq!(names(&out), ["SubmitShares.Error"]);
    assert!(!core.is_closed());
}

#[test]
fn an_extended_channel_names_its_worker_and_is_acked_after_commit() {
    let t = now();
    let mut core: ServerCore<&str, u32> = ServerCore::new(config(AckPolicy::AfterCommit));
    let mut out = vec![];
    core.on_message(setup(), &[], t, &mut out);
    let ext = RequestExtensions {
        request_id: 1,
        requested_extensions: vec![EXTENSION_WORKER_HASHRATE].try_into().unwrap(),
    };
    core.on_message(ext.into(), &[], t, &mut out);
    out.clear();
    let open = OpenExtendedMiningChannel {
        request_id: 2,
        user_identity: Str0_255::new("site").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 4,
    };
    let Some(Request::Open(a)) = core.on_message(open.into(), &[], t, &mut out) else {
        panic!("an admission")
    };
    let id = core
        .open(*a, placement(&[9, 9], 6, true), &mut out)
        .unwrap();
    assert_eq!(core.group_id(), None, "extended channels stand alone");
    let job = core.send_job(id, &spec(None), 5, &mut out).unwrap();
    core.send_prev_hash(id, job, &TIP, &mut out);
    assert_eq!(
        names(&out),
        [
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash"
        ]
    );
    let mut client = Client {
        channels: Channels::new(),
        nonce: 0,
    };
    client.feed(&out);
    let mut tlvs = Vec::new();
    strata_protocol::tlv::encode_list(
        &[Tlv::new(
            EXTENSION_WORKER_HASHRATE,
            FIELD_TYPE_USER_IDENTITY,
            &b"rig.3"[..],
        )
        .unwrap()],
        &mut tlvs,
    );
    out.clear();
    let share = client.extended(id, 1, &[1, 2, 3, 4, 5, 6]);
    let Some(Request::Accepted(a)) = core.on_message(share.into(), &tlvs, t, &mut out) else {
        panic!("accepted")
    };
    assert_eq!(a.worker.as_deref(), Some("rig.3"));
    assert_eq!(a.submit.extranonce(), [1, 2, 3, 4, 5, 6]);
    core.flush_acks(&mut out);
    assert!(out.is_empty(), "nothing acknowledged before the commit");
    let ack = PendingAck {
        channel_id: id,
        sequence_number: 1,
        difficulty: a.share.difficulty,
    };
    core.on_committed(std::slice::from_ref(&ack), &mut out);
    assert_eq!(names(&out), ["SubmitShares.Success"]);
    out.clear();
    core.on_commit_failed(&[ack], &mut out);
    assert_eq!(names(&out), ["SubmitShares.Error"]);

    // malformed TLVs close the connection; nothing follows
    out.clear();
    let share = client.extended(id, 2, &[6; 6]);
    core.on_message(share.into(), &[0xff], t, &mut out);
    assert!(matches!(out.last(), Some(Out::Close(_))), "{out:?}");
    assert!(core.is_closed());
    out.clear();
    assert!(core.on_message(setup(), &[], t, &mut out).is_none());
    assert!(out.is_empty());
}

#[test]
fn standard_channels_share_a_group_job_and_targets_stay_within_their_bounds() {
    let t = now();
    let mut core: ServerCore<&str, u32> = ServerCore::new(config(AckPolicy::Batched));
    let mut out = vec![];
    core.on_message(setup(), &[], t, &mut out);
    let mut ids = vec![];
    for (i, prefix) in [[0u8, 0, 0, 1], [0, 0, 0, 2]].iter().enumerate() {
        let open = OpenStandardMiningChannel {
            request_id: i as u32,
            user_identity: Str0_255::new("alice").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
        };
        let Some(Request::Open(a)) = core.on_message(open.into(), &[], t, &mut out) else {
            panic!("an admission")
        };
        let mut p = placement(prefix, 0, true);
        p.floor = Target::from_difficulty(2f64.powi(-20)).unwrap();
        ids.push(core.open(*a, p, &mut out).unwrap());
    }
    let g = core.job_group().expect("a group with members");
    out.clear();
    let job = core.send_group_job(g, &spec(None), 77, &mut out).unwrap();
    core.send_prev_hash(g, job, &TIP, &mut out);
    assert_eq!(names(&out), ["NewExtendedMiningJob", "SetNewPrevHash"]);
    let mut client = Client {
        channels: Channels::new(),
        nonce: 0,
    };
    for &id in &ids {
        let c = core.channel(id).unwrap();
        client
            .channels
            .insert(
                Channel::new_standard(
                    id,
                    c.extranonce_prefix(),
                    c.target(),
                    ChannelConfig::default(),
                )
                .unwrap(),
            )
            .unwrap();
        client.channels.add_to_group(g, id).unwrap();
    }
    client.feed(&out);
    for (seq, &id) in ids.iter().enumerate() {
        let share = client.standard(id, seq as u32 + 1);
        let r = core.on_message(share.into(), &[], t, &mut out);
        assert!(matches!(r, Some(Request::Accepted(_))), "{r:?}");
        assert_eq!(core.job_data(id, job), Some(&77), "the group's job data");
    }

    // a device announcing far more than the floor allows gets the floor, not harder
    out.clear();
    let upd = UpdateChannel {
        channel_id: ids[0],
        nominal_hash_rate: 1e18,
        maximum_target: U256([0xff; 32]),
    };
    let r = core.on_message(upd.into(), &[], t, &mut out);
    assert!(matches!(r, Some(Request::Updated { .. })));
    match &out[..] {
        [Out::Send(Message::Mining(MiningMessage::SetTarget(s)))] => assert_eq!(
            Target::from_le_bytes(s.maximum_target.0),
            Target::from_difficulty(2f64.powi(-20)).unwrap()
        ),
        other => panic!("{other:?}"),
    }
    // closing the group closes both members
    out.clear();
    let close = strata_protocol::mining::CloseChannel {
        channel_id: g,
        reason_code: Str0_255::new("bye").unwrap(),
    };
    let Some(Request::Closed(closed)) = core.on_message(close.into(), &[], t, &mut out) else {
        panic!("closed")
    };
    assert_eq!(closed.len(), 2);
    assert_eq!(core.channel_count(), 0);
}

#[test]
fn anything_before_setup_and_work_selection_without_support_are_refused() {
    let t = now();
    let mut core: ServerCore<(), ()> = ServerCore::new(config(AckPolicy::Batched));
    let mut out = vec![];
    let open = OpenStandardMiningChannel {
        request_id: 1,
        user_identity: Str0_255::new("alice").unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256([0xff; 32]),
    };
    assert!(core.on_message(open.into(), &[], t, &mut out).is_none());
    assert!(matches!(&out[..], [Out::Close(_)]));

    let mut core: ServerCore<(), ()> = ServerCore::new(config(AckPolicy::Batched));
    out.clear();
    let Message::Common(strata_protocol::common::CommonMessage::SetupConnection(mut s)) = setup()
    else {
        panic!()
    };
    s.flags = strata_protocol::mining::REQUIRES_WORK_SELECTION;
    core.on_message(s.into(), &[], t, &mut out);
    assert_eq!(names(&out), ["SetupConnection.Error"]);
    assert!(core.is_closed());

    // an open whose maximum target is zero, or whose hashrate is no number
    let mut core: ServerCore<(), ()> = ServerCore::new(config(AckPolicy::Batched));
    core.on_message(setup(), &[], t, &mut out);
    out.clear();
    for (rate, max, code) in [
        (0.0, [0u8; 32], "max-target-out-of-range"),
        (f32::NAN, [0xff; 32], "invalid-nominal-hashrate"),
    ] {
        let open = OpenStandardMiningChannel {
            request_id: 3,
            user_identity: Str0_255::new("alice").unwrap(),
            nominal_hash_rate: rate,
            max_target: U256(max),
        };
        out.clear();
        assert!(core.on_message(open.into(), &[], t, &mut out).is_none());
        match &out[..] {
            [Out::Send(Message::Mining(MiningMessage::OpenMiningChannelError(e)))] => {
                assert_eq!(e.error_code.as_str(), code)
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!core.is_closed());
}

#[test]
fn extended_channels_of_the_group_size_join_it_with_one_set_group_channel() {
    let t = now();
    let mut core: ServerCore<&str, u32> = ServerCore::new(config(AckPolicy::Batched));
    let mut out = vec![];
    core.on_message(setup(), &[], t, &mut out);
    let open = |core: &mut ServerCore<&str, u32>, prefix: &[u8], size: u16| {
        let msg = OpenExtendedMiningChannel {
            request_id: 1,
            user_identity: Str0_255::new("proxy").unwrap(),
            nominal_hash_rate: 0.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 0,
        };
        let mut out: Vec<Out> = vec![];
        let Some(Request::Open(a)) = core.on_message(msg.into(), &[], t, &mut out) else {
            panic!("an admission")
        };
        core.open(*a, placement(prefix, size, true), &mut out)
            .unwrap()
    };
    // full sizes 8, 8 and 9: the group takes the first size it sees
    let a = open(&mut core, &[0, 1], 6);
    let b = open(&mut core, &[0, 2], 6);
    let odd = open(&mut core, &[0, 3, 0], 6);
    out.clear();
    assert_eq!(core.group_extended(&mut out), [a, b]);
    let g = core.group_id().unwrap();
    match &out[..] {
        [Out::Send(Message::Mining(MiningMessage::SetGroupChannel(s)))] => {
            assert_eq!(s.group_channel_id, g);
            assert_eq!(s.channel_ids.iter().copied().collect::<Vec<_>>(), [a, b]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        core.channels().group(g).unwrap().full_extranonce_size(),
        Some(8)
    );
    assert_eq!(
        core.channel(odd).unwrap().group_id(),
        None,
        "another size stays alone"
    );
    // grouped once: nothing more to say
    out.clear();
    assert!(core.group_extended(&mut out).is_empty());
    assert!(out.is_empty());
    assert_eq!(core.job_group(), Some(g));
    out.clear();
    core.send_group_job(g, &spec(None), 1, &mut out).unwrap();
    assert_eq!(names(&out), ["NewExtendedMiningJob"]);
    assert!(core.channel(a).unwrap().future_job(1).is_some());
    assert!(core.channel(b).unwrap().future_job(1).is_some());
    assert!(core.channel(odd).unwrap().future_job(1).is_none());
}
