#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! Buckets and tallies against a real Redis (BLASTDOOR_TEST_REDIS_URL).

use std::sync::Arc;
use std::time::Duration;

use blastdoor_cluster::{BucketCheck, BucketOp, Buckets, Redis, Tallies, TallyKey};
use prometheus_client::metrics::counter::Counter;

/// A connected Redis under a prefix of its own, or None (test skipped).
async fn redis() -> Option<Arc<Redis>> {
    let Ok(url) = std::env::var("BLASTDOOR_TEST_REDIS_URL") else {
        eprintln!("SKIPPED: BLASTDOOR_TEST_REDIS_URL is not set (.ci/run sets it)");
        return None;
    };
    let prefix = format!("blastdoor-test-{:016x}:", fastrand::u64(..));
    let r = Redis::start(&url, Duration::from_secs(2), &prefix, Counter::default()).unwrap();
    for _ in 0..200 {
        if r.is_connected() {
            return Some(r);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("Redis at {url} did not connect");
}

fn check(key: &str, limit: u64, op: BucketOp) -> BucketCheck {
    BucketCheck {
        key: key.to_string(),
        limit,
        op,
    }
}

#[tokio::test]
async fn requests_buckets_take_all_or_nothing() {
    let Some(r) = redis().await else { return };
    let b = Buckets::new(r);
    let (svc, caller) = (b.key(&["s", "service"]), b.key(&["s", "caller", "k1"]));
    for left in [2, 1, 0] {
        let s = b
            .run(&[
                check(&svc, 10, BucketOp::Take),
                check(&caller, 3, BucketOp::Take),
            ])
            .await
            .unwrap();
        assert!(s.iter().all(|s| s.allowed));
        assert_eq!(s[1].remaining, left);
    }
    let s = b
        .run(&[
            check(&svc, 10, BucketOp::Take),
            check(&caller, 3, BucketOp::Take),
        ])
        .await
        .unwrap();
    assert!(s[0].allowed && !s[1].allowed, "{s:?}");
    assert_eq!(
        s[1].retry_after_secs, 20,
        "one request per 20 s at 3 a minute"
    );
    // The refused call took nothing from the service's bucket either.
    let s = b.run(&[check(&svc, 10, BucketOp::Take)]).await.unwrap();
    assert_eq!(s[0].remaining, 6, "10 - 3 taken - this one");
}

#[tokio::test]
async fn units_buckets_check_then_charge_into_debt() {
    let Some(r) = redis().await else { return };
    let b = Buckets::new(r);
    let key = b.key(&["s", "service-output_tokens"]);
    let s = b.run(&[check(&key, 600, BucketOp::Check)]).await.unwrap();
    assert!(s[0].allowed);
    assert_eq!(s[0].remaining, 600, "checking takes nothing");
    b.run(&[check(&key, 600, BucketOp::Charge(900))])
        .await
        .unwrap();
    let s = b.run(&[check(&key, 600, BucketOp::Check)]).await.unwrap();
    assert!(!s[0].allowed);
    assert_eq!(s[0].remaining, 0);
    // 300 units of debt plus one unit, at 10 units a second.
    assert!((30..=31).contains(&s[0].retry_after_secs), "{s:?}");
}

fn tally(t: &Tallies, target: &str, amount: i64, hard: bool, floor: i64) -> TallyKey {
    TallyKey {
        key: t.key("team", target, "day", 0),
        amount,
        hard,
        floor,
        ttl_ms: Some(60_000),
        alerts: vec![50, 100],
    }
}

#[tokio::test]
async fn tallies_hold_a_hard_budget_across_nodes() {
    let Some(r) = redis().await else { return };
    // Two nodes' views of the same budget: one Redis, two handles.
    let (a, b) = (Tallies::new(Arc::clone(&r)), Tallies::new(r));
    let key = |t: &Tallies| vec![tally(t, "ml", 100, true, 0)];
    let ra = a.reserve(&key(&a), 60).await.unwrap().unwrap();
    assert_eq!(ra[0].used, 60);
    let refused = b.reserve(&key(&b), 60).await.unwrap().unwrap_err();
    assert_eq!(refused.0, 0);
    assert_eq!(refused.1.used, 60, "the other node's reservation counts");
    // Settling for less frees room; the 50% alert fires once, cluster-wide.
    let settled = a.settle(&key(&a), 60, 55).await.unwrap();
    assert_eq!(settled[0].0.used, 55);
    assert_eq!(settled[0].0.settled, 55);
    assert_eq!(settled[0].1, vec![50]);
    let rb = b.reserve(&key(&b), 40).await.unwrap().unwrap();
    assert_eq!(rb[0].used, 95);
    let settled = b.settle(&key(&b), 40, 40).await.unwrap();
    assert_eq!(settled[0].1, Vec::<u32>::new(), "50% was already alerted");
    assert_eq!(settled[0].0.settled, 95);
    // A release (settle with 0) gives a reservation back.
    a.reserve(&key(&a), 5).await.unwrap().unwrap();
    let released = a.settle(&key(&a), 5, 0).await.unwrap();
    assert_eq!(released[0].0.used, 95);
}

#[tokio::test]
async fn a_tally_below_what_a_node_knows_is_raised() {
    let Some(r) = redis().await else { return };
    let t = Tallies::new(r);
    // A fresh (or restarted) Redis: the node's ledger says 90 is spent.
    let refused = t
        .reserve(&[tally(&t, "ops", 100, true, 90)], 20)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.1.settled, 90);
    // Soft budgets never refuse, and count the reservation.
    let soft = t
        .reserve(&[tally(&t, "ops-soft", 100, false, 90)], 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(soft[0].used, 110);
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_wait() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", l.local_addr().unwrap());
    drop(l);
    let errors = Counter::default();
    let r = Redis::start(&url, Duration::from_millis(50), "x:", errors.clone()).unwrap();
    let b = Buckets::new(r);
    let key = b.key(&["s", "service"]);
    assert!(b.run(&[check(&key, 1, BucketOp::Take)]).await.is_err());
    assert!(errors.get() >= 1);
}
