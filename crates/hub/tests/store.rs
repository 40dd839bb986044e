//! Store conformance: the same story on SQLite and on PostgreSQL (`PHLIX_TEST_STORE`), against
//! the `Store` API directly, so both backends are held to one behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use phlix_hub::config::DatabaseUrl;
use phlix_hub::store::{AuditEntry, NewUser, Store, StoreError};

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
        phlix_hub::settings::ACCESS_TTL.get(&store).await.unwrap(),
        1200
    );
    assert_eq!(
        phlix_hub::settings::REFRESH_TTL.get(&store).await.unwrap(),
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
