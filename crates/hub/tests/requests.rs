//! Media requests (SPEC O) against fake Radarr and Sonarr servers written from their v3 API
//! documentation (tests/common/arr.rs): request → approve → the *arr received a valid add →
//! the *arr has the files → the sync marks it available, with events; the clear errors; who
//! may see what; bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::arr::{API_KEY, FakeArr, Mode};
use common::{TestHub, call};
use phlix_hub::config::Secret;
use reqwest::Method;
use serde_json::{Value, json};

struct Setup {
    hub: TestHub,
    radarr: FakeArr,
    sonarr: FakeArr,
    admin: String,
    anna: String,
    ben: String,
}

impl Setup {
    /// A hub whose Radarr and Sonarr are the fakes, enabled in the settings, with a quick
    /// availability sync and a short *arr timeout.
    async fn new() -> Self {
        Self::with_keys(true).await
    }

    async fn with_keys(keys: bool) -> Self {
        let radarr = FakeArr::radarr().await;
        let sonarr = FakeArr::sonarr().await;
        let hub = TestHub::start_configured(
            |args| args.arr_sync_interval = Duration::from_millis(200),
            |config| {
                if keys {
                    config.radarr.api_key = Some(Secret::from_bytes(API_KEY.into()));
                    config.sonarr.api_key = Some(Secret::from_bytes(API_KEY.into()));
                }
                config.arr_timeout = Duration::from_secs(1);
            },
        )
        .await;
        let admin = hub.register("admin", "password123").await.access_token;
        let anna = hub.register("anna", "password123").await.access_token;
        let ben = hub.register("ben", "password123").await.access_token;
        let setup = Self {
            hub,
            radarr,
            sonarr,
            admin,
            anna,
            ben,
        };
        setup
            .settings(json!({
                "server.arr.radarr.enabled": true,
                "server.arr.radarr.url": setup.radarr.url(),
                "server.arr.sonarr.enabled": true,
                "server.arr.sonarr.url": setup.sonarr.url(),
            }))
            .await;
        setup
    }

    async fn settings(&self, values: Value) {
        let (status, body) = call(
            &self.hub,
            &self.admin,
            Method::PUT,
            "/api/v1/me/hub-settings",
            Some(json!({ "settings": values })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn request(&self, token: &str, body: Value) -> (u16, Value) {
        call(
            &self.hub,
            token,
            Method::POST,
            "/api/v1/me/requests",
            Some(body),
        )
        .await
    }

    async fn approve(&self, id: i64) -> (u16, Value) {
        call(
            &self.hub,
            &self.admin,
            Method::POST,
            &format!("/api/v1/admin/requests/{id}/approve"),
            None,
        )
        .await
    }

    async fn status_of(&self, token: &str, id: i64) -> String {
        let (status, body) = call(
            &self.hub,
            token,
            Method::GET,
            &format!("/api/v1/me/requests/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["request"]["status"].as_str().unwrap().to_owned()
    }

    /// Waits (up to 10 s) until request `id` has `status`.
    async fn wait_status(&self, token: &str, id: i64, status: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.status_of(token, id).await;
            if now == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "request {id} is {now}, not {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn events(&self, token: &str) -> reqwest::Response {
        let events = self
            .hub
            .http_client
            .get(self.hub.url("/api/v1/me/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200);
        events
    }
}

/// Reads the event stream until it holds `needle`.
async fn read_until(events: &mut reqwest::Response, seen: &mut String, needle: &str) {
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .unwrap_or_else(|_| panic!("{needle} did not arrive: {seen}"))
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn dune() -> Value {
    json!({"type": "movie", "tmdb_id": 438_631, "title": "Dune",
           "poster_url": "https://image.tmdb.org/t/p/original/dune.jpg"})
}

#[tokio::test]
async fn a_film_is_approved_added_to_radarr_and_becomes_available() {
    let setup = Setup::new().await;
    let mut anna_events = setup.events(&setup.anna).await;
    let mut admin_events = setup.events(&setup.admin).await;
    let (status, body) = setup.request(&setup.anna, dune()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "Request created successfully.");
    let row = &body["request"];
    for key in [
        "id",
        "user_id",
        "type",
        "tmdb_id",
        "title",
        "poster_url",
        "season",
        "episode",
        "status",
        "rejection_reason",
        "created_at",
        "updated_at",
        "username",
    ] {
        assert!(row.get(key).is_some(), "{key} missing in {row}");
    }
    assert_eq!(
        (
            row["status"].as_str(),
            row["username"].as_str(),
            row["season"].is_null()
        ),
        (Some("pending"), Some("anna"), true)
    );
    let created_at = row["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 19, "YYYY-MM-DD HH:MM:SS: {created_at}");
    assert_eq!(&created_at[10..11], " ");
    let id = row["id"].as_i64().unwrap();
    // The admin's stream learns of the new request; nothing reached Radarr yet.
    let mut admin_seen = String::new();
    read_until(&mut admin_events, &mut admin_seen, "event: request.created").await;
    assert!(setup.radarr.posted("/api/v3/movie").is_empty());

    let (status, body) = setup.approve(id).await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"message": "Request approved successfully.", "request_id": id})
        )
    );
    // Radarr got a valid add, with the key, the first quality profile and root folder.
    let adds = setup.radarr.posted("/api/v3/movie");
    assert_eq!(adds.len(), 1);
    let add = &adds[0];
    assert_eq!(add["tmdbId"], 438_631);
    assert_eq!(add["title"], "Dune");
    assert_eq!(add["titleSlug"], "dune-438631");
    assert_eq!(add["year"], 2021);
    assert_eq!(add["qualityProfileId"], 4);
    assert_eq!(add["rootFolderPath"], "/data/movies");
    assert_eq!(add["monitored"], true);
    assert_eq!(add["minimumAvailability"], "released");
    assert_eq!(add["addOptions"]["searchForMovie"], true);
    assert_eq!(add["images"][0]["coverType"], "poster");
    assert!(
        setup
            .radarr
            .calls()
            .iter()
            .all(|c| c.api_key.as_deref() == Some(API_KEY)),
        "every call carries X-Api-Key"
    );
    assert_eq!(setup.status_of(&setup.anna, id).await, "approved");

    // Not downloaded yet: the sync leaves it approved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.status_of(&setup.anna, id).await, "approved");
    setup.radarr.set_has_file(438_631, true);
    setup.wait_status(&setup.anna, id, "available").await;
    let mut seen = String::new();
    read_until(&mut anna_events, &mut seen, "event: request.available").await;
    assert!(seen.contains("event: request.approved"), "{seen}");
    assert!(seen.contains(&format!("\"id\":{id}")), "{seen}");

    // The caller's `available` list is their own.
    let (_, mine) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests?status=available",
        None,
    )
    .await;
    assert_eq!(mine["count"], 1);
    let (_, bens) = call(
        &setup.hub,
        &setup.ben,
        Method::GET,
        "/api/v1/me/requests?status=available",
        None,
    )
    .await;
    assert_eq!(bens, json!({"count": 0, "requests": []}));
    // The audit log has the story, one row per action, with the actors.
    let store = setup.hub.store().await;
    for (event, action, actor) in [
        ("request.created", "request.create", Some("anna")),
        ("request.approved", "request.approve", Some("admin")),
        ("request.available", "request.available", None),
    ] {
        let rows = store.recent_audit(Some(event), 5).await.unwrap();
        assert_eq!(rows.len(), 1, "{event}");
        let row = &rows[0];
        assert_eq!(
            (row.resource.as_deref(), row.action.as_deref(), row.success),
            (Some("requests"), Some(action), true)
        );
        assert_eq!(row.user_id.is_some(), actor.is_some(), "{event}");
        assert!(
            row.context_json
                .as_deref()
                .unwrap()
                .contains(&format!("\"request_id\":{id}"))
        );
    }
    setup.hub.stop().await;
}

#[tokio::test]
async fn one_season_of_a_new_series_is_monitored_and_becomes_available() {
    let setup = Setup::new().await;
    let (status, body) = setup
        .request(
            &setup.anna,
            json!({"type": "series", "tmdb_id": "95396", "title": "Severance", "season": 2}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["request"]["season"], 2);
    assert_eq!(
        body["request"]["tmdb_id"], 95_396,
        "a numeric string is accepted"
    );
    let id = body["request"]["id"].as_i64().unwrap();
    assert_eq!(setup.approve(id).await.0, 200);
    let adds = setup.sonarr.posted("/api/v3/series");
    assert_eq!(adds.len(), 1);
    let add = &adds[0];
    assert_eq!(
        add["tvdbId"], 371_980,
        "the TVDB id from the lookup, not the TMDB id"
    );
    assert_eq!(add["title"], "Severance");
    assert_eq!(add["titleSlug"], "severance");
    assert_eq!(add["qualityProfileId"], 4);
    assert_eq!(add["rootFolderPath"], "/data/tv");
    assert_eq!(add["seasonFolder"], true);
    assert_eq!(add["addOptions"]["searchForMissingEpisodes"], true);
    assert_eq!(
        add["seasons"],
        json!([{"seasonNumber": 0, "monitored": false}, {"seasonNumber": 1, "monitored": false},
               {"seasonNumber": 2, "monitored": true}])
    );
    // The lookup was by TMDB id.
    assert!(
        setup
            .sonarr
            .calls()
            .iter()
            .any(|c| c.path == "/api/v3/series/lookup" && c.query.contains("tmdb")),
        "{:?}",
        setup.sonarr.calls()
    );
    // Season 1 complete is not enough; season 2 complete is.
    setup.sonarr.set_season_percent(371_980, 1, 100.0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(setup.status_of(&setup.anna, id).await, "approved");
    setup.sonarr.set_season_percent(371_980, 2, 100.0);
    setup.wait_status(&setup.anna, id, "available").await;
    setup.hub.stop().await;
}

#[tokio::test]
async fn a_series_sonarr_has_gets_the_season_monitored_and_searched() {
    let setup = Setup::new().await;
    let mut expanse = common::arr::series_fixtures()[1].clone();
    expanse["monitored"] = json!(true);
    let series_id = setup.sonarr.preload(expanse);
    let (_, body) = setup
        .request(
            &setup.anna,
            json!({"type": "series", "tmdb_id": 63_639, "title": "The Expanse", "season": 3}),
        )
        .await;
    let id = body["request"]["id"].as_i64().unwrap();
    let (status, body) = setup.approve(id).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        setup.sonarr.posted("/api/v3/series").is_empty(),
        "not added twice"
    );
    let puts: Vec<_> = setup
        .sonarr
        .calls()
        .into_iter()
        .filter(|c| c.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].path, format!("/api/v3/series/{series_id}"));
    let stored = setup.sonarr.library()[0].clone();
    let monitored: Vec<i64> = stored["seasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["monitored"] == true)
        .map(|s| s["seasonNumber"].as_i64().unwrap())
        .collect();
    assert_eq!(monitored, vec![3]);
    assert_eq!(
        setup.sonarr.commands(),
        vec![json!({"name": "SeasonSearch", "seriesId": series_id, "seasonNumber": 3})]
    );
    setup.sonarr.set_season_percent(280_619, 3, 100.0);
    setup.wait_status(&setup.anna, id, "available").await;
    setup.hub.stop().await;
}

#[tokio::test]
async fn auto_approve_deny_and_the_decision_rules() {
    let setup = Setup::new().await;
    // Deny with a reason; a decided request cannot be decided again.
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    let (status, body) = call(
        &setup.hub,
        &setup.admin,
        Method::POST,
        &format!("/api/v1/admin/requests/{id}/deny"),
        Some(json!({"reason": "Already on the shelf"})),
    )
    .await;
    assert_eq!(
        (status, &body),
        (
            200,
            &json!({"message": "Request denied successfully.", "request_id": id})
        )
    );
    let (_, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        &format!("/api/v1/me/requests/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (
            body["request"]["status"].as_str(),
            body["request"]["rejection_reason"].as_str()
        ),
        (Some("rejected"), Some("Already on the shelf"))
    );
    for path in [
        format!("/api/v1/admin/requests/{id}/approve"),
        format!("/api/v1/admin/requests/{id}/deny"),
    ] {
        let (status, body) = call(&setup.hub, &setup.admin, Method::POST, &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("request_not_pending")),
            "{path}"
        );
    }
    assert!(setup.radarr.posted("/api/v3/movie").is_empty());
    // Unknown ids are 404 request_not_found, whatever their shape.
    for bad in ["999999", "abc", "-1", "0"] {
        let (status, body) = setup.approve_path(bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("request_not_found")),
            "{bad}"
        );
    }
    // Members cannot approve.
    let (status, _) = call(
        &setup.hub,
        &setup.anna,
        Method::POST,
        &format!("/api/v1/admin/requests/{id}/approve"),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // With auto-approve, a new request goes to Radarr at once.
    setup.settings(json!({"requests.auto_approve": true})).await;
    let (status, body) = setup
        .request(
            &setup.ben,
            json!({"type": "movie", "tmdb_id": 329_865, "title": "Arrival"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["request"]["status"], "approved");
    assert_eq!(setup.radarr.posted("/api/v3/movie").len(), 1);
    // Auto-approve is best effort: with Radarr down the request is created, pending.
    setup.radarr.set_mode(Mode::Down);
    let (status, body) = setup
        .request(
            &setup.ben,
            json!({"type": "movie", "tmdb_id": 693_134, "title": "Dune: Part Two"}),
        )
        .await;
    assert_eq!(
        (status, body["request"]["status"].as_str()),
        (201, Some("pending")),
        "{body}"
    );
    setup.hub.stop().await;
}

impl Setup {
    async fn approve_path(&self, id: &str) -> (u16, Value) {
        call(
            &self.hub,
            &self.admin,
            Method::POST,
            &format!("/api/v1/admin/requests/{id}/approve"),
            None,
        )
        .await
    }
}

#[tokio::test]
async fn clear_errors_when_the_arr_is_missing_down_slow_or_broken() {
    let setup = Setup::new().await;
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();

    // Down, slow (past the 1 s timeout), garbage, 50 MB: 502 arr_failed naming Radarr, and
    // the request stays pending.
    for (mode, words) in [
        (Mode::Down, "Radarr is unreachable"),
        (Mode::Slow(Duration::from_secs(3)), "Radarr is unreachable"),
        (Mode::Garbage, "not JSON"),
        (Mode::Huge, "too large"),
    ] {
        setup.radarr.set_mode(mode);
        let started = std::time::Instant::now();
        let (status, body) = setup.approve(id).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("arr_failed")),
            "{mode:?}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("Radarr") && message.contains(words),
            "{mode:?}: {message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(setup.status_of(&setup.anna, id).await, "pending");
    }
    setup.radarr.set_mode(Mode::Normal);
    // Radarr refusing with its own validation message: the message is passed on.
    setup
        .settings(json!({"server.arr.radarr.quality_profile_id": 99}))
        .await;
    let (status, body) = setup.approve(id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("arr_failed")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Radarr answered 400: Quality Profile does not exist"),
        "{body}"
    );
    assert_eq!(setup.status_of(&setup.anna, id).await, "pending");
    setup
        .settings(json!({"server.arr.radarr.quality_profile_id": null}))
        .await;

    // Not enabled: 409 arr_not_configured, for approval and for search.
    setup
        .settings(json!({"server.arr.radarr.enabled": false}))
        .await;
    let (status, body) = setup.approve(id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("arr_not_configured")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Radarr is not configured"),
        "{body}"
    );
    let (status, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests/search?type=movie&q=dune",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("arr_not_configured")),
        "{body}"
    );
    setup
        .settings(json!({"server.arr.radarr.enabled": true}))
        .await;
    let (status, _) = setup.approve(id).await;
    assert_eq!(status, 200);
    assert_eq!(
        setup.radarr.posted("/api/v3/movie").len(),
        2,
        "the refused add and this one"
    );
    assert_eq!(setup.radarr.library().len(), 1);
    setup.hub.stop().await;
}

#[tokio::test]
async fn without_an_api_key_the_arr_is_not_configured_and_the_key_never_shows() {
    let setup = Setup::with_keys(false).await;
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    let (status, body) = setup.approve(id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("arr_not_configured")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("HUB_RADARR_API_KEY"),
        "{body}"
    );
    assert!(setup.radarr.calls().is_empty());
    // The key is not a setting: refused, and no response carries it.
    let (status, body) = call(
        &setup.hub,
        &setup.admin,
        Method::PUT,
        "/api/v1/me/hub-settings",
        Some(json!({"settings": {"server.arr.radarr.api_key": "x"}})),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_key")));
    setup.hub.stop().await;

    let keyed = Setup::new().await;
    let (_, settings) = call(
        &keyed.hub,
        &keyed.admin,
        Method::GET,
        "/api/v1/me/hub-settings",
        None,
    )
    .await;
    assert!(
        !settings.to_string().contains(API_KEY),
        "the API key leaked: {settings}"
    );
    keyed.hub.stop().await;
}

#[tokio::test]
async fn duplicates_and_weekly_limits() {
    let setup = Setup::new().await;
    let (status, first) = setup.request(&setup.anna, dune()).await;
    assert_eq!(status, 201);
    let (status, body) = setup.request(&setup.anna, dune()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("request_exists")),
        "{body}"
    );
    assert_eq!(
        body["request"]["id"], first["request"]["id"],
        "the existing request is in the body"
    );
    // Another user may ask for the same film; a series season is its own key.
    assert_eq!(setup.request(&setup.ben, dune()).await.0, 201);
    let season =
        |s: i64| json!({"type": "series", "tmdb_id": 95_396, "title": "Severance", "season": s});
    assert_eq!(setup.request(&setup.anna, season(1)).await.0, 201);
    assert_eq!(setup.request(&setup.anna, season(2)).await.0, 201);
    assert_eq!(setup.request(&setup.anna, season(2)).await.0, 409);

    // Limits: 2 films per 7 days; the third is 429 with Retry-After. Admins are exempt.
    setup.settings(json!({"requests.movie_limit": 2})).await;
    let arrival = json!({"type": "movie", "tmdb_id": 329_865, "title": "Arrival"});
    assert_eq!(setup.request(&setup.anna, arrival.clone()).await.0, 201);
    let response = setup
        .hub
        .http_client
        .post(setup.hub.url("/api/v1/me/requests"))
        .bearer_auth(&setup.anna)
        .json(&json!({"type": "movie", "tmdb_id": 693_134, "title": "Dune: Part Two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (7 * 86_400 - 60..=7 * 86_400).contains(&retry_after),
        "{retry_after}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["code"].as_str()),
        (Some("Too Many Requests"), Some("request_limit_reached"))
    );
    // Series are counted apart; admins are exempt.
    assert_eq!(setup.request(&setup.anna, season(3)).await.0, 201);
    assert_eq!(setup.request(&setup.admin, arrival.clone()).await.0, 201);
    assert_eq!(setup.request(&setup.admin, dune()).await.0, 201);
    assert_eq!(
        setup
            .request(
                &setup.admin,
                json!({"type": "movie", "tmdb_id": 693_134, "title": "Dune: Part Two"})
            )
            .await
            .0,
        201
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn concurrent_requests_of_one_user_respect_the_limit_and_the_duplicate_rule() {
    let setup = Setup::new().await;
    setup.settings(json!({"requests.movie_limit": 3})).await;
    let ids = [438_631, 693_134, 329_865, 11, 12, 13, 14, 15];
    let answers = futures_util::future::join_all(ids.iter().map(|id| {
        setup.request(
            &setup.anna,
            json!({"type": "movie", "tmdb_id": id, "title": format!("Film {id}")}),
        )
    }))
    .await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let limited = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!((created, limited), (3, 5), "{answers:?}");
    let same =
        futures_util::future::join_all((0..6).map(|_| setup.request(&setup.ben, dune()))).await;
    assert_eq!(
        same.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{same:?}"
    );
    assert_eq!(
        same.iter().filter(|(s, _)| *s == 409).count(),
        5,
        "{same:?}"
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn users_see_and_delete_only_their_own_requests() {
    let setup = Setup::new().await;
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/me/requests/{id}");
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = call(&setup.hub, &setup.ben, method.clone(), &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("not_request_owner")),
            "{method}"
        );
    }
    let (status, body) = call(
        &setup.hub,
        &setup.ben,
        Method::GET,
        "/api/v1/me/requests/424242",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("request_not_found"))
    );
    let (status, body) = call(
        &setup.hub,
        &setup.ben,
        Method::GET,
        "/api/v1/me/requests",
        None,
    )
    .await;
    assert_eq!((status, &body), (200, &json!({"count": 0, "requests": []})));
    let (status, _) = call(
        &setup.hub,
        &setup.ben,
        Method::GET,
        "/api/v1/admin/requests",
        None,
    )
    .await;
    assert_eq!(status, 403);
    // The admin queue: pending by default, filters, `all`, a bad status.
    let (status, body) = call(
        &setup.hub,
        &setup.admin,
        Method::GET,
        "/api/v1/admin/requests",
        None,
    )
    .await;
    assert_eq!((status, body["count"].as_i64()), (200, Some(1)));
    assert_eq!(body["requests"][0]["username"], "anna");
    let (_, body) = call(
        &setup.hub,
        &setup.admin,
        Method::GET,
        "/api/v1/admin/requests?status=approved",
        None,
    )
    .await;
    assert_eq!(body["count"], 0);
    let (_, body) = call(
        &setup.hub,
        &setup.admin,
        Method::GET,
        "/api/v1/admin/requests?status=all",
        None,
    )
    .await;
    assert_eq!(body["count"], 1);
    let (status, body) = call(
        &setup.hub,
        &setup.admin,
        Method::GET,
        "/api/v1/admin/requests?status=done",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_status"))
    );
    // The owner deletes in any status; then it is gone. Admins may delete any.
    let (status, _) = call(&setup.hub, &setup.anna, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&setup.hub, &setup.anna, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    let (_, body) = setup.request(&setup.ben, dune()).await;
    let bens = body["request"]["id"].as_i64().unwrap();
    let (status, _) = call(
        &setup.hub,
        &setup.admin,
        Method::DELETE,
        &format!("/api/v1/me/requests/{bens}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    setup.hub.stop().await;
}

#[tokio::test]
async fn search_goes_through_the_arr_lookup_and_marks_each_result() {
    let setup = Setup::new().await;
    let (status, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests/search?type=movie&q=dune",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0],
        json!({"tmdb_id": 438_631, "title": "Dune", "year": 2021,
               "overview": "Paul Atreides leads nomadic tribes in a battle to control the desert planet Arrakis.",
               "poster_url": "https://image.tmdb.org/t/p/original/dune.jpg", "status": "none"})
    );
    // Requested by somebody → `requested`; available → `available`.
    let (_, body) = setup.request(&setup.ben, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    let (_, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests/search?type=movie&q=dune",
        None,
    )
    .await;
    assert_eq!(body["results"][0]["status"], "requested");
    assert_eq!(setup.approve(id).await.0, 200);
    setup.radarr.set_has_file(438_631, true);
    setup.wait_status(&setup.ben, id, "available").await;
    let (_, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests/search?type=movie&q=dune",
        None,
    )
    .await;
    assert_eq!(body["results"][0]["status"], "available");
    // Series search through Sonarr, with the seasons.
    let (status, body) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests/search?type=series&q=expanse",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["tmdb_id"], 63_639);
    assert_eq!(body["results"][0]["seasons"], json!([0, 1, 2, 3, 4, 5, 6]));
    // Bad queries.
    for (query, code) in [
        ("type=book&q=x", "invalid_type"),
        ("q=dune", "invalid_type"),
        ("type=movie", "missing_query"),
        ("type=movie&q=%20", "missing_query"),
    ] {
        let (status, body) = call(
            &setup.hub,
            &setup.anna,
            Method::GET,
            &format!("/api/v1/me/requests/search?{query}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    setup.hub.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_400_with_the_spec_codes() {
    let setup = Setup::new().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"type": "book", "tmdb_id": 1, "title": "x"}),
            "invalid_type",
        ),
        (json!({"tmdb_id": 1, "title": "x"}), "invalid_type"),
        (
            json!({"type": "movie", "tmdb_id": 0, "title": "x"}),
            "invalid_tmdb_id",
        ),
        (
            json!({"type": "movie", "tmdb_id": -1, "title": "x"}),
            "invalid_tmdb_id",
        ),
        (
            json!({"type": "movie", "tmdb_id": "abc", "title": "x"}),
            "invalid_tmdb_id",
        ),
        (
            json!({"type": "movie", "tmdb_id": 1e99, "title": "x"}),
            "invalid_tmdb_id",
        ),
        (
            json!({"type": "movie", "tmdb_id": 1.5, "title": "x"}),
            "invalid_tmdb_id",
        ),
        (json!({"type": "movie", "title": "x"}), "invalid_tmdb_id"),
        (json!({"type": "movie", "tmdb_id": 1}), "missing_title"),
        (
            json!({"type": "movie", "tmdb_id": 1, "title": "   "}),
            "missing_title",
        ),
        (
            json!({"type": "movie", "tmdb_id": 1, "title": "x".repeat(1_000_000)}),
            "invalid_title",
        ),
        (
            json!({"type": "series", "tmdb_id": 1, "title": "x", "season": -3}),
            "invalid_season",
        ),
        (
            json!({"type": "series", "tmdb_id": 1, "title": "x", "season": "two"}),
            "invalid_season",
        ),
        (
            json!({"type": "movie", "tmdb_id": 1, "title": "x", "season": 1}),
            "invalid_season",
        ),
        (
            json!({"type": "series", "tmdb_id": 1, "title": "x", "episode": 2}),
            "invalid_episode",
        ),
        (
            json!({"type": "movie", "tmdb_id": 1, "title": "x", "poster_url": "javascript:alert(1)"}),
            "invalid_poster_url",
        ),
        (json!([1, 2]), "invalid_body"),
        // The SPEC's order: type before tmdb_id before title.
        (json!({"type": "x", "tmdb_id": 0}), "invalid_type"),
        (json!({"type": "movie", "tmdb_id": 0}), "invalid_tmdb_id"),
    ];
    for (body, code) in cases {
        let shown: String = body.to_string().chars().take(80).collect();
        let (status, answer) = setup.request(&setup.anna, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{shown}: {answer}"
        );
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{shown}"
        );
    }
    // Not JSON at all.
    let response = setup
        .hub
        .http_client
        .post(setup.hub.url("/api/v1/me/requests"))
        .bearer_auth(&setup.anna)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, mine) = call(
        &setup.hub,
        &setup.anna,
        Method::GET,
        "/api/v1/me/requests",
        None,
    )
    .await;
    assert_eq!(mine["count"], 0, "nothing was created");
    // Deny with a reason that is not a string.
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    let (status, body) = call(
        &setup.hub,
        &setup.admin,
        Method::POST,
        &format!("/api/v1/admin/requests/{id}/deny"),
        Some(json!({"reason": 5})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_reason"))
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn the_sync_survives_an_arr_outage_and_resumes() {
    let setup = Setup::new().await;
    let (_, body) = setup.request(&setup.anna, dune()).await;
    let id = body["request"]["id"].as_i64().unwrap();
    assert_eq!(setup.approve(id).await.0, 200);
    setup.radarr.set_mode(Mode::Down);
    setup.radarr.set_has_file(438_631, true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        setup.status_of(&setup.anna, id).await,
        "approved",
        "nothing is known while Radarr is down"
    );
    setup.radarr.set_mode(Mode::Normal);
    setup.wait_status(&setup.anna, id, "available").await;
    setup.hub.stop().await;
}
