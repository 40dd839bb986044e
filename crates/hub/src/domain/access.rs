//! A short-lived, per-node cache of what the relay's HTTP entry points check on every request:
//! the user behind a session token, the target server (owner, proxy policy) and the user's
//! monthly usage and quota. Without it each proxied request cost three database round trips,
//! which dominated small-response latency and throughput (BENCHMARKS.md, "Side by side").
//!
//! Entries live [`TTL`]; a change made on this node (server removed, policy or subdomain
//! changed) drops the server's entries at once, a change made on another node applies within
//! [`TTL`]. Usage bytes not yet flushed to the database are counted from the in-memory meters,
//! so a cached usage row only lags by what other nodes flushed in the last [`TTL`]. Absent
//! rows are never cached. Only the relay's proxy path reads through this cache; every other
//! endpoint reads the database.
//!
//! The proxy path also keeps the claims of the session tokens it verified: HS256 verification
//! (base64, two JSON documents, an HMAC) was 8 % of the hub's CPU per small proxied request.
//! A token is the key, byte for byte, so a hit is a token that verified before; its `exp` is
//! checked on every hit, and everything else (user disabled, sessions ended) is checked after.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use phlix_proto::auth::SessionClaims;

use crate::auth::now_unix;
use crate::auth::session::{SessionKeys, TokenError, TokenKind};
use crate::store::{Bandwidth, ServerRow, Store, StoreResult, UserRow};

/// How long an entry is trusted.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries per map before it is emptied (a bound on memory, far above a node's working set).
pub const MAX_ENTRIES: usize = 50_000;

#[derive(Debug)]
struct TtlMap<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlMap<V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (at.elapsed() < TTL).then(|| value.clone())
    }

    fn put(&self, key: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (Instant::now(), value));
    }

    fn retain(&self, keep: impl Fn(&str, &V) -> bool) {
        self.lock()
            .retain(|key, (at, value)| at.elapsed() < TTL && keep(key, value));
    }

    async fn get_or_load<F, Fut>(&self, key: &str, load: F) -> StoreResult<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<V>>>,
    {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let loaded = load().await?;
        if let Some(value) = &loaded {
            self.put(key, value.clone());
        }
        Ok(loaded)
    }
}

/// The cache; one per node, in `Core`.
#[derive(Debug)]
pub struct AccessCache {
    users: TtlMap<UserRow>,
    servers: TtlMap<ServerRow>,
    subdomains: TtlMap<ServerRow>,
    usage: TtlMap<Bandwidth>,
    /// "server\nuser" → an active share exists (only `true` is cached).
    collaborators: TtlMap<bool>,
    /// Session access token → its verified claims.
    claims: TtlMap<SessionClaims>,
}

impl Default for AccessCache {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessCache {
    #[must_use]
    pub fn new() -> Self {
        Self {
            users: TtlMap::new(),
            servers: TtlMap::new(),
            subdomains: TtlMap::new(),
            usage: TtlMap::new(),
            collaborators: TtlMap::new(),
            claims: TtlMap::new(),
        }
    }

    /// The claims of session access token `token`, verified by `sessions` at most once per
    /// [`TTL`]; an expired token is refused on every hit as on the first.
    ///
    /// # Errors
    /// [`TokenError`] saying why the token is refused.
    pub fn access_claims(
        &self,
        sessions: &SessionKeys,
        token: &str,
    ) -> Result<SessionClaims, TokenError> {
        if let Some(claims) = self.claims.get(token) {
            return if claims.exp >= now_unix() {
                Ok(claims)
            } else {
                Err(TokenError::Expired)
            };
        }
        let claims = sessions.verify(token, TokenKind::Access)?;
        self.claims.put(token, claims.clone());
        Ok(claims)
    }

    /// The user with `id`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn user(&self, store: &Store, id: &str) -> StoreResult<Option<UserRow>> {
        self.users.get_or_load(id, || store.user_by_id(id)).await
    }

    /// The server with `id`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server(&self, store: &Store, id: &str) -> StoreResult<Option<ServerRow>> {
        self.servers
            .get_or_load(id, || store.server_by_id(id))
            .await
    }

    /// The server holding subdomain `label`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn server_by_subdomain(
        &self,
        store: &Store,
        label: &str,
    ) -> StoreResult<Option<ServerRow>> {
        self.subdomains
            .get_or_load(label, || store.server_by_subdomain(label))
            .await
    }

    /// The user's stored usage and quota for `period`.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn bandwidth(
        &self,
        store: &Store,
        user_id: &str,
        period: &str,
    ) -> StoreResult<Bandwidth> {
        let key = format!("{user_id}\n{period}");
        let loaded = self
            .usage
            .get_or_load(&key, || async {
                store.bandwidth(user_id, period).await.map(Some)
            })
            .await?;
        Ok(loaded.unwrap_or_default())
    }

    /// Whether `user_id` holds an active share on `server_id` (a refusal is never cached, so a
    /// new share works at once; a revoke calls [`Self::forget_grant`]).
    ///
    /// # Errors
    /// Database failures only.
    pub async fn collaborator(
        &self,
        store: &Store,
        server_id: &str,
        user_id: &str,
    ) -> StoreResult<bool> {
        let key = format!("{server_id}\n{user_id}");
        let found = self
            .collaborators
            .get_or_load(&key, || async {
                let now = crate::auth::now_unix();
                Ok(store
                    .is_collaborator(server_id, user_id, now)
                    .await?
                    .then_some(true))
            })
            .await?;
        Ok(found.unwrap_or(false))
    }

    /// Drops the cached grant of `user_id` on `server_id` (a share revoked or expired).
    pub fn forget_grant(&self, server_id: &str, user_id: &str) {
        let key = format!("{server_id}\n{user_id}");
        self.collaborators.retain(|k, _| k != key.as_str());
    }

    /// Drops what is known about a server (removed, policy or subdomain changed).
    pub fn forget_server(&self, id: &str) {
        self.servers.retain(|key, _| key != id);
        self.subdomains.retain(|_, server| server.id != id);
        let prefix = format!("{id}\n");
        self.collaborators
            .retain(|key, _| !key.starts_with(&prefix));
    }

    /// Drops the cached row of a user (disabled, deleted, signed out everywhere).
    pub fn forget_user(&self, id: &str) {
        self.users.retain(|key, _| key != id);
        let suffix = format!("\n{id}");
        self.collaborators.retain(|key, _| !key.ends_with(&suffix));
    }

    /// Drops the usage rows of a user (quota changed, counters flushed).
    pub fn forget_usage(&self, user_id: &str) {
        let prefix = format!("{user_id}\n");
        self.usage.retain(|key, _| !key.starts_with(&prefix));
    }

    /// Drops expired entries (called on each maintenance tick).
    pub fn prune(&self) {
        self.users.retain(|_, _| true);
        self.servers.retain(|_, _| true);
        self.subdomains.retain(|_, _| true);
        self.usage.retain(|_, _| true);
        self.collaborators.retain(|_, _| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_claims_are_reused_but_expiry_and_forgery_still_refuse() {
        let sessions = SessionKeys::new(&crate::config::Secret::from_bytes(vec![9; 32]));
        let other = SessionKeys::new(&crate::config::Secret::from_bytes(vec![8; 32]));
        let cache = AccessCache::new();
        let (token, minted) = sessions.mint(TokenKind::Access, "u-1", 3600, 0).unwrap();
        assert_eq!(cache.access_claims(&sessions, &token).unwrap(), minted);
        // A hit needs no key at all: a key that cannot verify it still gets the claims.
        assert_eq!(cache.access_claims(&other, &token).unwrap(), minted);
        // A token signed with another key is verified, and refused.
        let (forged, _) = other.mint(TokenKind::Access, "u-1", 3600, 0).unwrap();
        assert_eq!(
            cache.access_claims(&sessions, &forged),
            Err(TokenError::Invalid)
        );
        // Refresh tokens are not access tokens, cached or not.
        let (refresh, _) = sessions.mint(TokenKind::Refresh, "u-1", 3600, 0).unwrap();
        assert!(matches!(
            cache.access_claims(&sessions, &refresh),
            Err(TokenError::WrongKind(_))
        ));
        // A cached token past its `exp` is refused on the next use.
        let (short, mut claims) = sessions.mint(TokenKind::Access, "u-2", 3600, 0).unwrap();
        claims.exp = now_unix() - 1;
        cache.claims.put(&short, claims);
        assert_eq!(
            cache.access_claims(&sessions, &short),
            Err(TokenError::Expired)
        );
    }

    #[tokio::test]
    async fn loads_once_within_the_ttl_and_never_caches_absence() {
        let map: TtlMap<u32> = TtlMap::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        for _ in 0..3 {
            let value = map
                .get_or_load("a", || async {
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(Some(7))
                })
                .await
                .ok()
                .flatten();
            assert_eq!(value, Some(7));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        for _ in 0..2 {
            let value = map
                .get_or_load("missing", || async {
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(None)
                })
                .await
                .ok()
                .flatten();
            assert_eq!(value, None);
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
        map.retain(|key, _| key != "a");
        assert_eq!(map.get("a"), None);
    }
}
