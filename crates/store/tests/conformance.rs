#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
//! One conformance suite, run against every backend: SQLite always,
//! PostgreSQL when `BLASTDOOR_TEST_POSTGRES_URL` is set (`.ci/run` sets it).

use std::collections::BTreeMap;

use blastdoor_store::{
    AuditEntry, AuditStore, BudgetRecord, BudgetScope, BudgetStore, GroupBy, KeyStore,
    LedgerRecord, LedgerStore, NewKey, SqlStore, StoreError, hour_of,
};

fn key(id: &str, created_at: i64) -> NewKey {
    NewKey {
        id: id.to_string(),
        secret_hash: format!("hash-of-{id}"),
        name: format!("consumer-{id}"),
        team: Some("media".to_string()),
        services: vec!["imagegen".to_string(), "chat".to_string()],
        methods: vec![],
        created_at,
        expires_at: Some(created_at + 86_400_000),
    }
}

async fn key_life_cycle<S: KeyStore>(s: &S) {
    s.insert_key(&key("k1", 1_000)).await.unwrap();
    s.insert_key(&key("k2", 2_000)).await.unwrap();
    match s.insert_key(&key("k1", 3_000)).await {
        Err(StoreError::Duplicate(id)) => assert_eq!(id, "k1"),
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    let k1 = s.get_key("k1").await.unwrap().expect("k1 stored");
    assert_eq!(k1.secret_hash, "hash-of-k1");
    assert_eq!(k1.services, vec!["imagegen", "chat"]);
    assert!(k1.methods.is_empty());
    assert_eq!(k1.team.as_deref(), Some("media"));
    assert_eq!(k1.expires_at, Some(1_000 + 86_400_000));
    assert_eq!((k1.revoked_at, k1.previous_hash.as_deref()), (None, None));
    assert!(s.get_key("nope").await.unwrap().is_none());
    let ids: Vec<String> = s
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, vec!["k2", "k1"], "newest first");

    // Rotation keeps the old hash for the grace period, or drops it.
    assert!(
        s.rotate_key("k1", "hash-2", Some(50_000), 10_000)
            .await
            .unwrap()
    );
    let k1 = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.secret_hash, "hash-2");
    assert_eq!(k1.previous_hash.as_deref(), Some("hash-of-k1"));
    assert_eq!(k1.previous_until, Some(50_000));
    assert!(s.rotate_key("k1", "hash-3", None, 11_000).await.unwrap());
    let k1 = s.get_key("k1").await.unwrap().unwrap();
    assert_eq!(
        (k1.secret_hash.as_str(), k1.previous_hash, k1.previous_until),
        ("hash-3", None, None)
    );
    assert!(!s.rotate_key("nope", "h", None, 11_000).await.unwrap());

    // Revocation is once, and ends rotation.
    assert!(s.revoke_key("k2", 20_000).await.unwrap());
    assert!(
        !s.revoke_key("k2", 21_000).await.unwrap(),
        "already revoked"
    );
    assert!(!s.revoke_key("nope", 21_000).await.unwrap());
    assert_eq!(
        s.get_key("k2").await.unwrap().unwrap().revoked_at,
        Some(20_000)
    );
    assert!(
        !s.rotate_key("k2", "h", None, 22_000).await.unwrap(),
        "a revoked key cannot be rotated"
    );

    // Caches catch up by change time.
    let changed: Vec<(String, i64)> = s
        .keys_changed_since(11_000)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id, k.updated_at))
        .collect();
    assert_eq!(
        changed,
        vec![("k1".to_string(), 11_000), ("k2".to_string(), 20_000)]
    );
    assert!(s.keys_changed_since(20_001).await.unwrap().is_empty());
}

async fn audit_log<S: AuditStore>(s: &S) {
    let entry = |at: i64, action: &str| AuditEntry {
        seq: 0,
        at,
        actor: "admin".to_string(),
        action: action.to_string(),
        target: "key:k1".to_string(),
        outcome: "ok".to_string(),
        detail: String::new(),
    };
    let a = s.append_audit(&entry(100, "key.create")).await.unwrap();
    let b = s.append_audit(&entry(200, "key.rotate")).await.unwrap();
    let c = s.append_audit(&entry(300, "key.revoke")).await.unwrap();
    assert!(a < b && b < c, "sequence numbers grow: {a} {b} {c}");
    let all = s.list_audit(0, 10).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec!["key.revoke", "key.rotate", "key.create"],
        "newest first"
    );
    assert_eq!(all[0].seq, c);
    assert_eq!(s.list_audit(200, 10).await.unwrap().len(), 2);
    assert_eq!(s.list_audit(0, 1).await.unwrap().len(), 1);
}

/// An hour in the past, well away from hour boundaries.
const T0: i64 = 1_790_000_000_000 - 1_790_000_000_000 % 3_600_000 + 1_800_000;

fn record(id: &str, at: i64, team: &str, cost: i64, units: &[(&str, u64)]) -> LedgerRecord {
    LedgerRecord {
        id: id.to_string(),
        at,
        request_id: format!("req-{id}"),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_string(),
        origin: format!("consumer-of-{team}"),
        consumer: format!("consumer-of-{team}"),
        key_id: format!("key-of-{team}"),
        team: team.to_string(),
        service: "chat".to_string(),
        operation: "createChatCompletion".to_string(),
        method: "POST".to_string(),
        status: 200,
        error: None,
        complete: true,
        latency_ms: 12,
        model: Some("gpt-4o-mini".to_string()),
        units: units.iter().map(|(u, n)| (u.to_string(), *n)).collect(),
        cost_micros: cost,
        unpriced: None,
    }
}

async fn ledger<S: LedgerStore>(s: &S) {
    let batch = vec![
        record(
            "a",
            T0,
            "media",
            1500,
            &[("input_tokens", 100), ("output_tokens", 20)],
        ),
        record("b", T0 + 60_000, "media", 500, &[("input_tokens", 10)]),
        record("c", T0 + 3_600_000, "search", 7, &[]),
    ];
    assert_eq!(s.append_ledger(&batch).await.unwrap(), 3);
    // A replayed spool stores nothing twice, and does not count twice.
    let mut again = batch.clone();
    let mut unpriced = record("d", T0, "media", 0, &[("input_tokens", 5)]);
    unpriced.model = Some("gpt-9".to_string());
    unpriced.unpriced = Some("no price for model \"gpt-9\"".to_string());
    again.push(unpriced);
    assert_eq!(s.append_ledger(&again).await.unwrap(), 1, "only d is new");
    assert_eq!(s.ledger_count().await.unwrap(), 4);

    let back = s.ledger_by_request("req-a").await.unwrap();
    assert_eq!(
        back,
        vec![batch[0].clone()],
        "a record reads back as written"
    );

    let rows = s
        .usage(GroupBy::Team, T0 - 10, T0 + 7_200_000)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].group, "media", "costliest first");
    assert_eq!(rows[0].requests, 3);
    assert_eq!(rows[0].cost_micros, 2000);
    assert_eq!(rows[0].unpriced_requests, 1);
    assert_eq!(
        rows[0].units,
        BTreeMap::from([
            ("input_tokens".to_string(), 115),
            ("output_tokens".to_string(), 20)
        ])
    );
    assert_eq!((rows[1].group.as_str(), rows[1].requests), ("search", 1));

    // By hour and team, oldest first: a, b and d in T0's hour, c an hour on.
    let hourly = s
        .hourly(GroupBy::Team, T0 - 10, T0 + 7_200_000)
        .await
        .unwrap();
    let hourly: Vec<_> = hourly
        .iter()
        .map(|h| (h.hour, h.group.as_str(), h.requests, h.cost_micros))
        .collect();
    assert_eq!(
        hourly,
        vec![
            (hour_of(T0), "media", 3, 2000),
            (hour_of(T0) + 3_600_000, "search", 1, 7),
        ]
    );

    // Reports resolve to the hour: a window inside the first hour sees it whole.
    let first_hour = s.usage(GroupBy::Key, T0 + 1, T0 + 2).await.unwrap();
    assert_eq!(first_hour.len(), 1);
    assert_eq!(first_hour[0].group, "key-of-media");
    assert_eq!(first_hour[0].requests, 3);
    let later = s
        .usage(GroupBy::Service, T0 + 7_200_000, T0 + 9_000_000)
        .await
        .unwrap();
    assert!(later.is_empty(), "{later:?}");

    let team_spend = s
        .spend_since(BudgetScope::Team, "media", hour_of(T0))
        .await
        .unwrap();
    assert_eq!(team_spend, 2000);
    let since_second_hour = s
        .spend_since(BudgetScope::Service, "chat", hour_of(T0) + 3_600_000)
        .await
        .unwrap();
    assert_eq!(since_second_hour, 7);
    assert_eq!(
        s.spend_since(BudgetScope::Key, "nobody", 0).await.unwrap(),
        0
    );

    assert_eq!(
        s.unpriced_models(0).await.unwrap(),
        vec![("chat".to_string(), "gpt-9".to_string())]
    );

    // A replay whose one known record comes after the first multi-row
    // insert: the records before it are not stored or counted twice.
    let day_later = T0 + 86_400_000;
    let many: Vec<LedgerRecord> = (0..120)
        .map(|i| record(&format!("m{i:03}"), day_later, "bulk", 1, &[("n", 2)]))
        .collect();
    assert_eq!(s.append_ledger(&many[110..111]).await.unwrap(), 1);
    assert_eq!(s.append_ledger(&many).await.unwrap(), 119);
    assert_eq!(s.ledger_count().await.unwrap(), 4 + 120);
    let bulk = s
        .usage(GroupBy::Team, day_later, day_later + 1)
        .await
        .unwrap();
    assert_eq!(bulk.len(), 1);
    assert_eq!(
        (
            bulk[0].group.as_str(),
            bulk[0].requests,
            bulk[0].cost_micros
        ),
        ("bulk", 120, 120)
    );
    assert_eq!(bulk[0].units, BTreeMap::from([("n".to_string(), 240)]));
}

async fn budgets<S: BudgetStore>(s: &S) {
    let mut b = BudgetRecord {
        scope: BudgetScope::Team,
        target: "media".to_string(),
        amount_micros: 5_000_000,
        period: "month".to_string(),
        mode: "hard".to_string(),
        alerts: vec![50, 80, 100],
        created_at: 1000,
        updated_at: 1000,
    };
    s.put_budget(&b).await.unwrap();
    b.amount_micros = 9_000_000;
    b.mode = "soft".to_string();
    b.created_at = 2000;
    b.updated_at = 2000;
    s.put_budget(&b).await.unwrap();
    let listed = s.list_budgets().await.unwrap();
    assert_eq!(listed.len(), 1, "one budget per target: set replaces");
    assert_eq!(listed[0].amount_micros, 9_000_000);
    assert_eq!(listed[0].mode, "soft");
    assert_eq!(
        listed[0].created_at, 1000,
        "replacing keeps the creation time"
    );
    assert!(s.delete_budget(BudgetScope::Team, "media").await.unwrap());
    assert!(!s.delete_budget(BudgetScope::Team, "media").await.unwrap());
    assert!(s.list_budgets().await.unwrap().is_empty());
}

/// Runs the whole suite on a freshly migrated store.
async fn suite(url: &str) {
    let store = SqlStore::connect(url).await.unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        vec![1, 2, 3],
        "first start applies every migration"
    );
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "migrating again is a no-op"
    );
    key_life_cycle(&store).await;
    audit_log(&store).await;
    ledger(&store).await;
    budgets(&store).await;
    store.close().await;
    // Everything survives a reconnect.
    let again = SqlStore::connect(url).await.unwrap();
    assert!(again.migrate().await.unwrap().is_empty());
    assert_eq!(again.list_keys().await.unwrap().len(), 2);
    again.close().await;
}

#[tokio::test]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("blastdoor.db").display());
    suite(&url).await;
    assert!(
        dir.path().join("blastdoor.db-wal").exists() || dir.path().join("blastdoor.db").exists()
    );
}

#[tokio::test]
async fn sqlite_refuses_a_schema_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("future.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO blastdoor_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = SqlStore::connect(&url).await.unwrap();
    match store.migrate().await {
        Err(StoreError::TooNew { found: 999, .. }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused_clearly() {
    let err = SqlStore::connect("mysql://localhost/x").await.unwrap_err();
    assert!(err.to_string().contains("unsupported store url"), "{err}");
}

#[tokio::test]
async fn postgres_conformance() {
    let Ok(base) = std::env::var("BLASTDOOR_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED postgres_conformance: BLASTDOOR_TEST_POSTGRES_URL is not set");
        return;
    };
    // A schema of its own, so runs never see each other's rows.
    let schema = format!(
        "bd_test_{}_{}",
        std::process::id(),
        blastdoor_store::now_ms()
    );
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("cannot reach the test PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    suite(&url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
