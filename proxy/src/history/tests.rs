use std::collections::BTreeMap;

use super::*;

fn row(t: u64, work: f64, accepted: u64) -> Row {
    Row {
        t,
        secs: 60,
        work,
        accepted,
        rejected: 1,
        stale: 0,
    }
}

fn batch(t: u64, miners: &[(&str, f64, u64)]) -> Batch {
    let m: BTreeMap<String, Row> = miners
        .iter()
        .map(|(w, work, a)| ((*w).to_string(), row(t, *work, *a)))
        .collect();
    let farm = Row {
        work: m.values().map(|r| r.work).sum(),
        accepted: m.values().map(|r| r.accepted).sum(),
        ..row(t, 0.0, 0)
    };
    Batch { t, miners: m, farm }
}

#[test]
fn points_survive_a_restart_of_the_thread_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data").join("history.sqlite");
    let (h, thread) =
        spawn(Store::open(&path, 86_400).expect("open"), 8, 60, 86_400).expect("spawn");
    assert!(h.try_write(batch(6_000, &[("rig 412", 60.0, 3), ("rig7", 6.0, 1)])));
    assert!(h.try_write(batch(6_060, &[("rig 412", 120.0, 5)])));
    drop(h);
    thread
        .join()
        .expect("the thread ends once every handle is gone");

    // a new start reads what the last one wrote
    let store = Store::open(&path, 86_400).expect("reopen");
    assert_eq!(store.rows().expect("rows"), (3, 2));
    let p = store
        .points(Some("rig 412"), 0)
        .expect("read")
        .expect("known");
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].t, p[0].accepted, p[0].rejected), (6_000, 3, 1));
    assert_eq!(p[1].hashrate, 120.0 * 4_294_967_296.0 / 60.0);
    assert_eq!(
        store
            .points(Some("rig 412"), 6_001)
            .expect("read")
            .expect("known")
            .len(),
        1
    );
    assert_eq!(store.points(Some("nobody"), 0).expect("read"), None);
    let farm = store.points(None, 0).expect("read").expect("farm");
    assert_eq!(
        farm.iter().map(|p| p.accepted).collect::<Vec<_>>(),
        vec![4, 5]
    );

    // a step written again (a restart within it) adds up
    let mut store = store;
    store
        .write(&batch(6_060, &[("rig 412", 60.0, 2)]))
        .expect("write");
    let p = store
        .points(Some("rig 412"), 6_060)
        .expect("read")
        .expect("known");
    assert_eq!(p[0].accepted, 7);
    assert_eq!(p[0].hashrate, 180.0 * 4_294_967_296.0 / 120.0);
}

#[test]
fn rows_beyond_the_retention_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("h.sqlite"), 600).expect("open");
    for i in 0..30u64 {
        store
            .write(&batch(i * 60, &[("a", 1.0, 1), ("b", 1.0, 1)]))
            .expect("write");
    }
    // kept: t >= 29*60 - 600, i.e. steps 19..=29
    assert_eq!(store.rows().expect("rows"), (22, 11));
    let p = store.points(Some("a"), 0).expect("read").expect("known");
    assert_eq!(p.first().map(|p| p.t), Some(19 * 60));
    assert_eq!(p.len(), 11);
}

#[test]
fn windows_sum_each_worker_since_their_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("h.sqlite"), 86_400).expect("open");
    for i in 0..10u64 {
        store
            .write(&batch(i * 60, &[("a", 10.0, 1)]))
            .expect("write");
    }
    store.write(&batch(600, &[("b", 5.0, 1)])).expect("write");
    let w = store.window(300).expect("window");
    assert_eq!(
        w["a"],
        WindowSum {
            work: 50.0,
            secs: 300
        }
    );
    assert_eq!(
        w["b"],
        WindowSum {
            work: 5.0,
            secs: 60
        }
    );
    assert!(!store.window(10_000).expect("window").contains_key("a"));
    // the workers seen lately, newest first, bounded
    assert_eq!(store.workers(0, 10).expect("workers"), vec!["b", "a"]);
    assert_eq!(store.workers(0, 1).expect("workers"), vec!["b"]);
    assert!(store.workers(601, 10).expect("workers").is_empty());
}

#[test]
fn window_hashrate_adds_the_open_step() {
    let d = 4_294_967_296.0;
    let stored = WindowSum {
        work: 600.0,
        secs: 300,
    };
    // 30 s into the open step with 60 more work: 660 over 330 s
    assert_eq!(window_hashrate(stored, 60.0, 1_000, 1_030), 2.0 * d);
    // nothing stored: the open step alone
    assert_eq!(window_hashrate(WindowSum::default(), 10.0, 1_000, 1_010), d);
    assert_eq!(
        window_hashrate(WindowSum::default(), 0.0, 1_000, 1_000),
        0.0
    );
}

#[test]
fn a_full_queue_drops_the_batch_without_waiting() {
    // no thread takes from this queue: the second batch does not fit
    let (h, _rx) = HistoryHandle::stalled(1);
    assert!(h.try_write(batch(0, &[])));
    assert!(!h.try_write(batch(60, &[])));
}

#[tokio::test]
async fn the_thread_answers_points_and_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("h.sqlite"), 86_400).expect("open");
    let (h, _thread) = spawn(store, 8, 60, 86_400).expect("spawn");
    assert!(h.try_write(batch(0, &[("a", 10.0, 1)])));
    assert!(h.try_write(batch(60, &[("a", 20.0, 2)])));
    let p = h
        .points(Some("a".into()), 0)
        .await
        .expect("answer")
        .expect("known");
    assert_eq!(p.iter().map(|p| p.accepted).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(h.points(Some("b".into()), 0).await.expect("answer"), None);
    let w = h.windows(vec![0, 60]).await.expect("answer");
    assert_eq!((w[0]["a"].work, w[1]["a"].work), (30.0, 20.0));
    // read again before a write: the same reading; after a write: a new one
    let again = h.windows(vec![0]).await.expect("answer");
    assert!(Arc::ptr_eq(&w[0], &again[0]));
    assert!(h.try_write(batch(120, &[("a", 5.0, 1)])));
    let w = h.windows(vec![0]).await.expect("answer");
    assert_eq!(
        w[0]["a"],
        WindowSum {
            work: 35.0,
            secs: 180
        }
    );
}
