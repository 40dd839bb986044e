//! Store conformance: the same story on SQLite and on PostgreSQL (`PHLIX_TEST_STORE`), against
//! the `Store` API directly, so both backends are held to one behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use phlix_hub::config::DatabaseUrl;
use phlix_hub::store::{AuditEntry, HeartbeatOutcome, NewUser, Store, StoreError};

async fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database_url(dir.path()).await;
    let store = Store::connect(&DatabaseUrl::parse(&url).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (dir, store)
}

fn new_user(name: &str, now: i64) -> NewUser {
    NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        password_hash: "$argon2id$placeholder".into(),
        display_name: None,
        force_admin: false,
        now,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_the_backend_is_named() {
    let (_dir, store) = fresh_store().await;
    store.migrate().await.unwrap();
    assert_eq!(store.backend(), common::store_kind());
    store.ping().await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test]
async fn users_are_unique_case_insensitively_and_found_by_name_or_email() {
    let (_dir, store) = fresh_store().await;
    let alice = store.create_user(&new_user("Alice", 100)).await.unwrap();
    assert!(alice.is_admin, "the first user is elected admin");
    assert_eq!((alice.created_at, alice.updated_at), (100, 100));

    let mut twin = new_user("ALICE", 101);
    twin.email = "other@example.com".into();
    assert!(matches!(
        store.create_user(&twin).await,
        Err(StoreError::Conflict("username"))
    ));
    let mut same_mail = new_user("alice2", 101);
    same_mail.email = "alice@example.com".into();
    assert!(matches!(
        store.create_user(&same_mail).await,
        Err(StoreError::Conflict("email"))
    ));
    assert_eq!(
        store.count_users().await.unwrap(),
        1,
        "failed inserts leave nothing behind"
    );

    let bob = store.create_user(&new_user("bob", 102)).await.unwrap();
    assert!(!bob.is_admin);
    let mut admin = new_user("carol", 103);
    admin.force_admin = true;
    assert!(store.create_user(&admin).await.unwrap().is_admin);

    for login in ["alice", "ALICE", "alice@example.com"] {
        assert_eq!(
            store.user_by_login(login).await.unwrap().map(|u| u.id),
            Some(alice.id.clone()),
            "{login}"
        );
    }
    assert!(store.user_by_login("nobody").await.unwrap().is_none());
    assert_eq!(
        store.user_by_id(&bob.id).await.unwrap().unwrap().username,
        "bob"
    );
    assert!(store.user_by_id("missing").await.unwrap().is_none());
    store.close().await;
}

#[tokio::test]
async fn refresh_revocation_is_once_only_and_pruned_after_expiry() {
    let (_dir, store) = fresh_store().await;
    assert!(!store.is_refresh_revoked("j1").await.unwrap());
    assert!(store.revoke_refresh("j1", "u", 500, 100).await.unwrap());
    assert!(
        !store.revoke_refresh("j1", "u", 500, 101).await.unwrap(),
        "second revocation reports false"
    );
    assert!(store.is_refresh_revoked("j1").await.unwrap());
    assert_eq!(store.prune_revoked_refresh(400).await.unwrap(), 0);
    assert_eq!(store.prune_revoked_refresh(501).await.unwrap(), 1);
    assert!(!store.is_refresh_revoked("j1").await.unwrap());
    store.close().await;
}

#[tokio::test]
async fn rate_limit_windows_count_block_and_restart() {
    let (_dir, store) = fresh_store().await;
    let key = "login:ip:10.0.0.1";
    for i in 0..5 {
        assert_eq!(
            store
                .rate_limit_retry_after(key, 5, 1000 + i)
                .await
                .unwrap(),
            None
        );
        store
            .record_rate_limit_failure(key, 900, 1000 + i)
            .await
            .unwrap();
    }
    assert_eq!(
        store.rate_limit_retry_after(key, 5, 1010).await.unwrap(),
        Some(890)
    );
    assert_eq!(
        store
            .rate_limit_retry_after("login:ip:other", 5, 1010)
            .await
            .unwrap(),
        None
    );
    // The window ends 900 s after the first failure; the next failure starts a new one.
    assert_eq!(
        store.rate_limit_retry_after(key, 5, 1900).await.unwrap(),
        None
    );
    store
        .record_rate_limit_failure(key, 900, 1900)
        .await
        .unwrap();
    assert_eq!(
        store.rate_limit_retry_after(key, 1, 1901).await.unwrap(),
        Some(899)
    );
    assert_eq!(
        store.rate_limit_retry_after(key, 2, 1901).await.unwrap(),
        None
    );
    assert_eq!(store.prune_rate_limits(2800).await.unwrap(), 1);
    store.close().await;
}

#[tokio::test]
async fn settings_and_audit_rows_round_trip() {
    let (_dir, store) = fresh_store().await;
    assert_eq!(store.setting("auth.access_ttl").await.unwrap(), None);
    store
        .put_setting("auth.access_ttl", "900", "int", 1)
        .await
        .unwrap();
    store
        .put_setting("auth.access_ttl", "1200", "int", 2)
        .await
        .unwrap();
    assert_eq!(
        store.setting("auth.access_ttl").await.unwrap().as_deref(),
        Some("1200")
    );
    assert_eq!(
        phlix_hub::domain::settings::ACCESS_TTL
            .get(&store)
            .await
            .unwrap(),
        1200
    );
    assert_eq!(
        phlix_hub::domain::settings::REFRESH_TTL
            .get(&store)
            .await
            .unwrap(),
        604_800
    );

    for (i, event) in ["a.one", "b.two", "a.one"].into_iter().enumerate() {
        let entry = AuditEntry {
            event: event.into(),
            user_id: Some("u1".into()),
            success: i != 1,
            ip_address: Some("127.0.0.1".into()),
            context_json: Some(r#"{"k":1}"#.into()),
            created_at: 10 + i64::try_from(i).unwrap(),
            ..AuditEntry::default()
        };
        store.audit(&entry).await.unwrap();
    }
    let all = store.recent_audit(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.created_at).collect::<Vec<_>>(),
        vec![12, 11, 10],
        "newest first"
    );
    assert!(!all[1].success);
    let only = store.recent_audit(Some("a.one"), 10).await.unwrap();
    assert_eq!(only.len(), 2);
    assert_eq!(store.recent_audit(None, 1).await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn servers_of_a_user_report_relay_and_library_facts() {
    let (_dir, store) = fresh_store().await;
    let owner = store.create_user(&new_user("owner", 1)).await.unwrap();
    assert!(store.servers_of_user(&owner.id).await.unwrap().is_empty());
    let sql = [
        "INSERT INTO servers (id, user_id, server_name, version, public_key_jwk, hostname_candidates_json, status, last_seen_at, enrolled_at, created_at, updated_at) \
         VALUES ('s1', $1, 'NAS', '0.45.0', '{}', '[\"https://nas.example.com\"]', 'online', 50, 40, 40, 40)",
        "INSERT INTO server_libraries (server_id, library_id, library_name, created_at, updated_at) VALUES ('s1', 'l1', 'Movies', 1, 1)",
        "INSERT INTO server_libraries (server_id, library_id, library_name, created_at, updated_at) VALUES ('s1', 'l2', 'Shows', 1, 1)",
        "INSERT INTO relay_sessions (id, server_id, tunnel_id, worker_node, opened_at) VALUES ('r1', 's1', 't1', 'node', 60)",
    ];
    for statement in sql {
        match &store {
            Store::Sqlite(pool) => sqlx::query(statement)
                .bind(&owner.id)
                .execute(pool)
                .await
                .map(|_| ()),
            Store::Postgres(pool) => {
                // PostgreSQL refuses a bound parameter the statement does not use.
                let query = sqlx::query(statement);
                let query = if statement.contains("$1") {
                    query.bind(&owner.id)
                } else {
                    query
                };
                query.execute(pool).await.map(|_| ())
            }
        }
        .unwrap();
    }
    let servers = store.servers_of_user(&owner.id).await.unwrap();
    assert_eq!(servers.len(), 1);
    let info = servers.into_iter().next().unwrap().into_info();
    assert_eq!(info.server_id, "s1");
    assert!(info.relay_active);
    assert_eq!(info.library_count, Some(2));
    assert_eq!(
        info.hostname_candidates,
        vec!["https://nas.example.com".to_owned()]
    );
    assert_eq!(info.last_seen_at, Some(50));
    let json = serde_json::to_value(&info).unwrap();
    for key in [
        "serverId",
        "userId",
        "serverName",
        "lastSeenAt",
        "hostnameCandidates",
        "relayActive",
        "libraryCount",
        "subdomain",
    ] {
        assert!(json.get(key).is_some(), "ServerInfoDto lacks {key}: {json}");
    }
    store.close().await;
}

fn claim(id: &str, code: &str, x: &str, expires_at: i64) -> phlix_hub::store::ClaimRow {
    phlix_hub::store::ClaimRow {
        id: id.into(),
        claim_code: code.into(),
        server_name: "NAS".into(),
        version: "0.45.0".into(),
        hostname_candidates_json: "[]".into(),
        protocol_version: "v1".into(),
        public_key_jwk: "{}".into(),
        public_key_x: x.into(),
        status: "pending".into(),
        expires_at,
        created_at: 0,
    }
}

#[tokio::test]
async fn claims_redeem_once_and_poll_once() {
    use phlix_hub::store::{PollOutcome, Redemption};
    let (_dir, store) = fresh_store().await;
    let owner = store.create_user(&new_user("owner", 1)).await.unwrap();
    store
        .insert_claim(&claim("c1", "AAAA-BBBB", "key1", 1000))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_claim(&claim("c2", "AAAA-BBBB", "key2", 1000))
            .await,
        Err(StoreError::Conflict("claim_code"))
    ));
    assert_eq!(
        store
            .pending_claim_for_key("key1", 10)
            .await
            .unwrap()
            .map(|c| c.id),
        Some("c1".into())
    );
    assert!(
        store
            .pending_claim_for_key("key1", 1000)
            .await
            .unwrap()
            .is_none(),
        "expired claims are not reused"
    );
    assert_eq!(
        store.poll_claim("c1", 10).await.unwrap(),
        PollOutcome::Pending
    );

    assert_eq!(
        store
            .redeem_claim("ZZZZ-ZZZZ", &owner.id, "s0", 10)
            .await
            .unwrap(),
        Redemption::NotFound
    );
    assert_eq!(
        store
            .redeem_claim("AAAA-BBBB", &owner.id, "s1", 10)
            .await
            .unwrap(),
        Redemption::Paired {
            server_id: "s1".into()
        }
    );
    assert_eq!(
        store
            .redeem_claim("AAAA-BBBB", &owner.id, "s2", 11)
            .await
            .unwrap(),
        Redemption::AlreadyClaimed
    );
    let server = store.server_by_id("s1").await.unwrap().unwrap();
    assert_eq!(
        (
            server.status.as_str(),
            server.user_id.as_str(),
            server.enrolled_at
        ),
        ("online", owner.id.as_str(), 10)
    );
    assert!(
        store.server_by_id("s2").await.unwrap().is_none(),
        "the losing redemption wrote nothing"
    );

    assert_eq!(
        store.poll_claim("c1", 12).await.unwrap(),
        PollOutcome::Claimed {
            server_id: "s1".into()
        }
    );
    assert_eq!(
        store.poll_claim("c1", 13).await.unwrap(),
        PollOutcome::Expired,
        "collected once"
    );

    store
        .insert_claim(&claim("c3", "CCCC-DDDD", "key3", 20))
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_claim("CCCC-DDDD", &owner.id, "s3", 20)
            .await
            .unwrap(),
        Redemption::Expired
    );
    assert_eq!(
        store.poll_claim("c3", 20).await.unwrap(),
        PollOutcome::Expired
    );
    assert_eq!(store.prune_claims(20 + 86_401).await.unwrap(), 1);
    store.close().await;
}

fn heartbeat(
    server_id: &str,
    at: i64,
    libraries: Option<Vec<(&str, &str)>>,
) -> phlix_hub::store::HeartbeatRecord {
    phlix_hub::store::HeartbeatRecord {
        server_id: server_id.into(),
        version: "0.46.0".into(),
        sent_at: at,
        uptime_seconds: at,
        active_sessions: 1,
        active_transcodes: 0,
        hostname_candidates_json: Some(r#"["http://nas:8096"]"#.into()),
        host_metrics_json: None,
        libraries: libraries.map(|list| {
            list.into_iter()
                .map(|(id, name)| phlix_hub::store::LibraryRow {
                    library_id: id.into(),
                    library_name: name.into(),
                })
                .collect()
        }),
        received_at: at,
    }
}

#[tokio::test]
async fn heartbeat_batches_update_servers_libraries_and_are_pruned() {
    let (_dir, store) = fresh_store().await;
    let owner = store.create_user(&new_user("owner", 1)).await.unwrap();
    store
        .insert_claim(&claim("c1", "AAAA-BBBB", "k", 1000))
        .await
        .unwrap();
    store
        .redeem_claim("AAAA-BBBB", &owner.id, "s1", 10)
        .await
        .unwrap();

    let found = store
        .write_heartbeats(&[
            heartbeat("s1", 20, Some(vec![("b", "Shows"), ("a", "Movies")])),
            heartbeat("ghost", 20, None),
            heartbeat("s1", 21, None),
        ])
        .await
        .unwrap();
    let came_online = |found: &[Option<HeartbeatOutcome>]| {
        found
            .iter()
            .map(|o| o.as_ref().map(|o| (o.owner_id == owner.id, o.came_online)))
            .collect::<Vec<_>>()
    };
    // A claimed server starts online (SPEC C.2): neither heartbeat brings it online.
    assert_eq!(
        came_online(&found),
        vec![Some((true, false)), None, Some((true, false))]
    );
    let server = store.server_by_id("s1").await.unwrap().unwrap();
    assert_eq!(
        (
            server.last_seen_at,
            server.version.as_str(),
            server.library_count
        ),
        (Some(21), "0.46.0", 2)
    );
    assert_eq!(server.hostname_candidates_json, r#"["http://nas:8096"]"#);
    let names: Vec<String> = store
        .libraries_of_server("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.library_name)
        .collect();
    assert_eq!(names, vec!["Movies", "Shows"]);
    assert_eq!(store.libraries_of_user(&owner.id).await.unwrap().len(), 2);
    // A changed list replaces the libraries; the hash is order-independent.
    assert_eq!(
        phlix_hub::store::library_hash(&store.libraries_of_server("s1").await.unwrap()),
        phlix_hub::store::library_hash(
            &heartbeat("s1", 0, Some(vec![("b", "Shows"), ("a", "Movies")]))
                .libraries
                .unwrap()
        )
    );
    store
        .write_heartbeats(&[heartbeat("s1", 22, Some(vec![("c", "Music")]))])
        .await
        .unwrap();
    assert_eq!(store.libraries_of_server("s1").await.unwrap().len(), 1);
    assert_eq!(store.recent_heartbeats("s1", 50).await.unwrap().len(), 3);

    // Reaper: silent and no tunnel → offline, once.
    assert_eq!(
        store.reap_offline_servers(22, 100).await.unwrap(),
        Vec::<(String, String)>::new(),
        "heard from at 22"
    );
    assert_eq!(
        store.reap_offline_servers(23, 100).await.unwrap(),
        vec![("s1".to_owned(), owner.id.clone())]
    );
    assert_eq!(
        store.reap_offline_servers(23, 101).await.unwrap(),
        Vec::<(String, String)>::new()
    );

    // Retention: older than the cut-off, and beyond `keep` per server. The first heartbeat
    // after the reaper brings the server back online, the others of the batch do not.
    let many: Vec<_> = (100..110).map(|t| heartbeat("s1", t, None)).collect();
    let found = store.write_heartbeats(&many).await.unwrap();
    let mut expected = vec![Some((true, false)); 10];
    expected[0] = Some((true, true));
    assert_eq!(came_online(&found), expected);
    assert_eq!(store.prune_heartbeats(50, 4).await.unwrap(), 3 + 6);
    let left: Vec<i64> = store
        .recent_heartbeats("s1", 50)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.received_at)
        .collect();
    assert_eq!(left, vec![109, 108, 107, 106]);
    // Deleting the server cascades.
    assert!(store.delete_server("s1").await.unwrap());
    assert!(store.recent_heartbeats("s1", 50).await.unwrap().is_empty());
    assert!(store.libraries_of_user(&owner.id).await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn a_full_batch_of_distinct_servers_is_stored() {
    let (_dir, store) = fresh_store().await;
    let owner = store.create_user(&new_user("owner", 1)).await.unwrap();
    // More distinct servers than SQLite allows terms in one compound SELECT (500).
    let count = phlix_hub::domain::heartbeats::MAX_BATCH;
    for i in 0..count {
        let code = format!("A{:03}-{:04}", i / 1000, i % 1000);
        store
            .insert_claim(&claim(&format!("c{i}"), &code, &format!("k{i}"), 1000))
            .await
            .unwrap();
        store
            .redeem_claim(&code, &owner.id, &format!("s{i}"), 10)
            .await
            .unwrap();
    }
    let batch: Vec<_> = (0..count)
        .map(|i| heartbeat(&format!("s{i}"), 50, None))
        .collect();
    let outcomes = store.write_heartbeats(&batch).await.unwrap();
    assert!(outcomes.iter().all(Option::is_some), "every server exists");
    for i in [0, count / 2, count - 1] {
        let server = store.server_by_id(&format!("s{i}")).await.unwrap().unwrap();
        assert_eq!(server.last_seen_at, Some(50), "s{i}");
        assert_eq!(
            store
                .recent_heartbeats(&format!("s{i}"), 5)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    store.close().await;
}

#[tokio::test]
async fn a_singleton_round_runs_on_one_node_at_a_time() {
    let (_dir, store) = fresh_store().await;
    // A second pool on the same database plays the second node.
    let other = match &store {
        Store::Sqlite(_) => None,
        Store::Postgres(pool) => Some(Store::Postgres(pool.clone())),
    };
    let outer = store
        .run_singleton("test.round", async {
            match &other {
                Some(other) => other
                    .run_singleton("test.round", async { 1 })
                    .await
                    .unwrap(),
                None => Some(1),
            }
        })
        .await
        .unwrap();
    match store.backend() {
        // PostgreSQL: the other node is refused while the round runs.
        "postgres" => assert_eq!(outer, Some(None)),
        // SQLite is one node: every round runs.
        _ => assert_eq!(outer, Some(Some(1))),
    }
    // After the round the lock is free again, on every backend.
    assert_eq!(
        store
            .run_singleton("test.round", async { 2 })
            .await
            .unwrap(),
        Some(2)
    );
    // Another name is another lock.
    let nested = store
        .run_singleton("test.a", async {
            store.run_singleton("test.b", async { 3 }).await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(nested, Some(Some(3)));
}

/// A fresh store with one user and one webhook endpoint.
async fn store_with_webhook() -> (
    tempfile::TempDir,
    phlix_hub::store::Store,
    phlix_hub::store::WebhookRow,
) {
    let (dir, store) = fresh_store().await;
    let user = store.create_user(&new_user("Hooks", 100)).await.unwrap();
    let hook = phlix_hub::store::WebhookRow {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        name: "hook".into(),
        url: "https://example.com/hook".into(),
        events_json: "[\"*\"]".into(),
        enabled: true,
        scope: "user".into(),
        secret: "whsec_test".into(),
        previous_secret: None,
        previous_secret_until: None,
        disabled_reason: None,
        failing_since: None,
        last_delivery_at: None,
        last_delivery_status: None,
        created_at: 100,
        updated_at: 100,
    };
    store.insert_webhook(&hook).await.unwrap();
    (dir, store, hook)
}

/// A pending delivery to `hook`, due at `next_attempt_ms`.
fn pending_delivery(
    hook: &phlix_hub::store::WebhookRow,
    next_attempt_ms: i64,
) -> phlix_hub::store::DeliveryRow {
    phlix_hub::store::DeliveryRow {
        id: uuid::Uuid::new_v4().to_string(),
        webhook_id: hook.id.clone(),
        event_id: format!("evt_{next_attempt_ms}"),
        event_type: "share.created".into(),
        payload: "{}".into(),
        status: "pending".into(),
        attempt_count: 0,
        next_attempt_ms: Some(next_attempt_ms),
        created_ms: 1_000,
    }
}

#[tokio::test]
async fn a_lease_taken_again_by_a_later_claim_cannot_be_renewed_by_the_first() {
    let (_dir, store, hook) = store_with_webhook().await;
    let row = pending_delivery(&hook, 1_000);
    store
        .enqueue_deliveries(std::slice::from_ref(&row))
        .await
        .unwrap();
    let claimed = store
        .claim_deliveries("n1", 2_000, 60_000, 5)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // Within its lease, the claim takes the lease again for the attempt.
    assert!(
        store
            .renew_lease(&row.id, "n1", 62_000, 70_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_lease(&row.id, "n2", 70_000, 80_000)
            .await
            .unwrap(),
        "another node's name"
    );
    // The lease runs out while the attempt waits; another node claims the row.
    let again = store
        .claim_deliveries("n2", 70_000, 60_000, 5)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(
        !store
            .renew_lease(&row.id, "n1", 70_000, 80_000)
            .await
            .unwrap(),
        "the first claim's lease is gone"
    );
    // Even a later claim by the same node fences off the earlier one.
    let third = store
        .claim_deliveries("n1", 130_000, 60_000, 5)
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert!(
        !store
            .renew_lease(&row.id, "n1", 70_000, 140_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .renew_lease(&row.id, "n1", 190_000, 200_000)
            .await
            .unwrap()
    );
    store.close().await;
}

#[tokio::test]
async fn the_next_delivery_due_is_when_the_earliest_pending_row_may_be_claimed() {
    use phlix_hub::store::AttemptOutcome;
    let (_dir, store, hook) = store_with_webhook().await;
    assert_eq!(store.next_delivery_due().await.unwrap(), None, "empty");
    let delivery = |next_attempt_ms: i64| pending_delivery(&hook, next_attempt_ms);
    let (early, late) = (delivery(5_000), delivery(9_000));
    store
        .enqueue_deliveries(&[late.clone(), early.clone()])
        .await
        .unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(5_000));

    // A claimed row may be claimed again when its lease ends, not before.
    let claimed = store
        .claim_deliveries("n1", 6_000, 60_000, 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, early.id);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(9_000));
    let claimed = store
        .claim_deliveries("n1", 9_500, 60_000, 5)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, late.id);
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(66_000));

    // Delivered rows leave the queue; a retry is due at its time (its lease is dropped).
    let outcome = |status: &'static str, next_attempt_ms: Option<i64>| AttemptOutcome {
        at_ms: 10_000,
        status_code: Some(500),
        duration_ms: 3,
        error: None,
        response_excerpt: String::new(),
        status,
        next_attempt_ms,
    };
    store
        .record_attempt(&early, &outcome("delivered", None))
        .await
        .unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(69_500));
    store
        .record_attempt(&late, &outcome("pending", Some(80_000)))
        .await
        .unwrap();
    assert_eq!(store.next_delivery_due().await.unwrap(), Some(80_000));
    assert!(
        store
            .claim_deliveries("n1", 79_999, 60_000, 5)
            .await
            .unwrap()
            .is_empty(),
        "not claimable before the time it reports"
    );
    assert_eq!(
        store
            .claim_deliveries("n1", 80_000, 60_000, 5)
            .await
            .unwrap()
            .len(),
        1,
        "claimable at the time it reports"
    );
    store
        .record_attempt(&late, &outcome("failed", None))
        .await
        .unwrap();
    assert_eq!(
        store.next_delivery_due().await.unwrap(),
        None,
        "all settled"
    );
    store.close().await;
}
