//! The committed fuzz seed corpora (`fuzz/seeds/frames`, `fuzz/seeds/message`) replayed
//! through the same harnesses the cargo-fuzz targets call, so that every crash ever found
//! (its reproducer is added to the seeds) stays fixed under a plain `cargo test`.
//!
//! `cargo test -p strata-protocol --test fuzz_corpus -- --ignored write_seeds` regenerates the
//! generated seeds (one frame of every message type, from fixed-seed arbitrary values).

use proptest::arbitrary::any;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::path::{Path, PathBuf};
use strata_protocol::{common, extensions, job_declaration, mining, template_distribution};
use strata_protocol::{fuzzing, Sv2Message};

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
}

fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let dir = seeds_dir(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("seed file");
        harness(&data);
        n += 1;
    }
    n
}

#[test]
fn frames_seeds_replay() {
    assert!(replay("frames", fuzzing::frames) > 40);
}

#[test]
fn message_seeds_replay() {
    assert!(replay("message", fuzzing::message) > 40);
}

fn frame_of<M>(runner: &mut TestRunner) -> Vec<u8>
where
    M: Sv2Message + proptest::arbitrary::Arbitrary,
{
    let m = any::<M>().new_tree(runner).expect("strategy").current();
    let mut v = Vec::new();
    m.encode_frame(&mut v);
    v
}

macro_rules! all_frames {
    ($runner:expr; $($t:ty),* $(,)?) => {
        vec![$( (<$t as Sv2Message>::NAME, frame_of::<$t>($runner)) ),*]
    };
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_seeds() {
    let mut runner = TestRunner::deterministic();
    let frames = all_frames![&mut runner;
        common::SetupConnection, common::SetupConnectionSuccess, common::SetupConnectionError,
        common::ChannelEndpointChanged, common::Reconnect,
        extensions::RequestExtensions, extensions::RequestExtensionsSuccess,
        extensions::RequestExtensionsError,
        job_declaration::AllocateMiningJobToken, job_declaration::AllocateMiningJobTokenSuccess,
        job_declaration::DeclareMiningJob, job_declaration::DeclareMiningJobSuccess,
        job_declaration::DeclareMiningJobError, job_declaration::ProvideMissingTransactions,
        job_declaration::ProvideMissingTransactionsSuccess, job_declaration::PushSolution,
        mining::OpenStandardMiningChannel, mining::OpenStandardMiningChannelSuccess,
        mining::OpenMiningChannelError, mining::OpenExtendedMiningChannel,
        mining::OpenExtendedMiningChannelSuccess, mining::NewMiningJob, mining::UpdateChannel,
        mining::UpdateChannelError, mining::CloseChannel, mining::SetExtranoncePrefix,
        mining::SubmitSharesStandard, mining::SubmitSharesExtended, mining::SubmitSharesSuccess,
        mining::SubmitSharesError, mining::NewExtendedMiningJob, mining::SetNewPrevHash,
        mining::SetTarget, mining::SetCustomMiningJob, mining::SetCustomMiningJobSuccess,
        mining::SetCustomMiningJobError, mining::SetGroupChannel,
        template_distribution::CoinbaseOutputConstraints, template_distribution::NewTemplate,
        template_distribution::SetNewPrevHash, template_distribution::RequestTransactionData,
        template_distribution::RequestTransactionDataSuccess,
        template_distribution::RequestTransactionDataError,
        template_distribution::SubmitSolution,
    ];
    for target in ["frames", "message"] {
        std::fs::create_dir_all(seeds_dir(target)).unwrap();
    }
    let mut stream = vec![7u8]; // first byte: chunk size used by the frames harness
    for (name, frame) in &frames {
        if frame.len() > 4096 {
            continue; // keep seeds small; the fuzzer grows what it needs
        }
        let file = name.replace('.', "_");
        std::fs::write(seeds_dir("message").join(format!("seed-{file}")), frame).unwrap();
        let mut one = vec![13u8];
        one.extend_from_slice(frame);
        std::fs::write(seeds_dir("frames").join(format!("seed-{file}")), one).unwrap();
        stream.extend_from_slice(frame);
    }
    // A SubmitSharesExtended followed by a 0x0002 user_identity TLV.
    let share = any::<mining::SubmitSharesExtended>()
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let tlv =
        strata_protocol::TlvField::to_tlv(&extensions::UserIdentity::new("worker.1").unwrap());
    let mut with_tlv = Vec::new();
    strata_protocol::tlv::encode_frame_with_tlvs(&share, &[tlv], &mut with_tlv).unwrap();
    std::fs::write(
        seeds_dir("message").join("seed-SubmitSharesExtended_tlv"),
        &with_tlv,
    )
    .unwrap();
    stream.extend_from_slice(&with_tlv);
    std::fs::write(seeds_dir("frames").join("seed-stream-all"), &stream).unwrap();
}
