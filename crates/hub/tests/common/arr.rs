//! Fake Radarr and Sonarr: real HTTP servers on 127.0.0.1 modelled on the public Radarr v3 and
//! Sonarr v3 API documentation (radarr.video/docs/api, sonarr.tv/docs/api), not on the hub's
//! client, so a wrong request fails here as it would against the real services:
//!
//! - every `/api/v3/*` call needs the `X-Api-Key` header (or `?apikey=`), else 401;
//! - lookups are served from fixtures (`/api/v3/movie/lookup?term=`,
//!   `/api/v3/movie/lookup/tmdb?tmdbId=`, `/api/v3/series/lookup?term=` with the `tmdb:` and
//!   `tvdb:` prefixes);
//! - `POST /api/v3/movie` and `POST /api/v3/series` validate their bodies as the services do
//!   (400 with a list of `{"propertyName","errorMessage","attemptedValue","severity",
//!   "errorCode"}` when `title`, `titleSlug`, `qualityProfileId`, `rootFolderPath` or
//!   `tmdbId`/`tvdbId` is missing or invalid; "This movie has already been added" /
//!   "This series has already been added" on a duplicate), keep what was added in memory and
//!   answer 201 with the new resource;
//! - `GET /api/v3/movie/{id}` (`hasFile`), `GET /api/v3/series/{id}` (season `statistics`),
//!   `PUT /api/v3/series/{id}` (202), `POST /api/v3/command` (201), quality profiles and root
//!   folders;
//! - the test can make it slow, down (connections closed at once), answer garbage or a huge
//!   body, and flip `hasFile` or a season's `percentOfEpisodes`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Which service the fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Radarr,
    Sonarr,
}

/// How the fake misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Every connection is closed at once, as if nothing listened.
    Down,
    /// Answers after this delay.
    Slow(Duration),
    /// 200 with an HTML page instead of JSON.
    Garbage,
    /// 200 with a 50 MB body.
    Huge,
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub api_key: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Library {
    /// Movies or series the fake "has", by id.
    items: Vec<Value>,
    next_id: i64,
    calls: Vec<Call>,
    commands: Vec<Value>,
}

struct Inner {
    kind: Kind,
    /// The connection tasks, aborted when the fake goes down.
    connections: Mutex<Vec<tokio::task::AbortHandle>>,
    api_key: String,
    mode: Mutex<Mode>,
    fixtures: Vec<Value>,
    library: Mutex<Library>,
}

/// A running fake *arr.
#[derive(Clone)]
pub struct FakeArr {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

pub const API_KEY: &str = "0123456789abcdef0123456789abcdef";

fn poster(path: &str) -> Value {
    json!([{"coverType": "poster", "url": format!("/MediaCover/{path}"),
            "remoteUrl": format!("https://image.tmdb.org/t/p/original/{path}.jpg")}])
}

/// Radarr's lookup fixtures (real TMDB ids and titles).
pub fn movie_fixtures() -> Vec<Value> {
    vec![
        json!({"title": "Dune", "sortTitle": "dune", "titleSlug": "dune-438631", "year": 2021,
               "tmdbId": 438_631, "imdbId": "tt1160419", "overview": "Paul Atreides leads nomadic tribes in a battle to control the desert planet Arrakis.",
               "images": poster("dune"), "runtime": 155}),
        json!({"title": "Dune: Part Two", "sortTitle": "dune part two", "titleSlug": "dune-part-two-693134",
               "year": 2024, "tmdbId": 693_134, "imdbId": "tt15239678", "overview": "Follow the mythic journey of Paul Atreides.",
               "images": poster("dune2"), "runtime": 167}),
        json!({"title": "Arrival", "sortTitle": "arrival", "titleSlug": "arrival-329865", "year": 2016,
               "tmdbId": 329_865, "imdbId": "tt2543164", "overview": "Linguistics professor Louise Banks leads an elite team.",
               "images": poster("arrival"), "runtime": 116}),
    ]
}

fn seasons(count: i64) -> Value {
    Value::Array(
        (0..=count)
            .map(|n| json!({"seasonNumber": n, "monitored": false}))
            .collect(),
    )
}

/// Sonarr's lookup fixtures (Sonarr v4 lookups carry `tmdbId` beside `tvdbId`).
pub fn series_fixtures() -> Vec<Value> {
    vec![
        json!({"title": "Severance", "sortTitle": "severance", "titleSlug": "severance", "year": 2022,
               "tvdbId": 371_980, "tmdbId": 95_396, "overview": "Mark leads a team of office workers whose memories have been surgically divided.",
               "images": [{"coverType": "poster", "remoteUrl": "https://artworks.thetvdb.com/banners/severance.jpg"}],
               "seasons": seasons(2)}),
        json!({"title": "The Expanse", "sortTitle": "expanse", "titleSlug": "the-expanse", "year": 2015,
               "tvdbId": 280_619, "tmdbId": 63_639, "overview": "A police detective in the asteroid belt.",
               "images": [{"coverType": "poster", "remoteUrl": "https://artworks.thetvdb.com/banners/expanse.jpg"}],
               "seasons": seasons(6)}),
    ]
}

impl FakeArr {
    /// Starts a fake Radarr with the movie fixtures.
    pub async fn radarr() -> Self {
        Self::start(Kind::Radarr, movie_fixtures()).await
    }

    /// Starts a fake Sonarr with the series fixtures.
    pub async fn sonarr() -> Self {
        Self::start(Kind::Sonarr, series_fixtures()).await
    }

    async fn start(kind: Kind, fixtures: Vec<Value>) -> Self {
        let inner = Arc::new(Inner {
            kind,
            connections: Mutex::default(),
            api_key: API_KEY.into(),
            mode: Mutex::new(Mode::Normal),
            fixtures,
            library: Mutex::new(Library {
                next_id: 1,
                ..Library::default()
            }),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(inner.clone());
        let accept_inner = inner.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                if *accept_inner.mode.lock().unwrap() == Mode::Down {
                    drop(socket);
                    continue;
                }
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let task = tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                    .await;
                });
                let mut open = accept_inner.connections.lock().unwrap();
                open.retain(|t| !t.is_finished());
                open.push(task.abort_handle());
            }
        });
        Self { addr, inner }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how the fake behaves; `Down` also closes every open connection.
    pub fn set_mode(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
        if mode == Mode::Down {
            for task in self.inner.connections.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.library.lock().unwrap().calls.clone()
    }

    /// The `POST` bodies to `path` received so far.
    pub fn posted(&self, path: &str) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path == path)
            .map(|c| c.body)
            .collect()
    }

    /// The movies or series the fake has.
    pub fn library(&self) -> Vec<Value> {
        self.inner.library.lock().unwrap().items.clone()
    }

    /// The commands received (`SeriesSearch`, `SeasonSearch`, …).
    pub fn commands(&self) -> Vec<Value> {
        self.inner.library.lock().unwrap().commands.clone()
    }

    /// Puts an item into the library as if added earlier; returns its id.
    pub fn preload(&self, mut item: Value) -> i64 {
        let mut library = self.inner.library.lock().unwrap();
        let id = library.next_id;
        library.next_id += 1;
        item["id"] = json!(id);
        finish_item(self.inner.kind, &mut item);
        library.items.push(item);
        id
    }

    /// Radarr: the movie's file has been downloaded.
    pub fn set_has_file(&self, tmdb_id: i64, has_file: bool) {
        let mut library = self.inner.library.lock().unwrap();
        for item in &mut library.items {
            if item["tmdbId"] == json!(tmdb_id) {
                item["hasFile"] = json!(has_file);
            }
        }
    }

    /// Sonarr: the share of a season's episodes that are downloaded.
    pub fn set_season_percent(&self, tvdb_id: i64, season: i64, percent: f64) {
        let mut library = self.inner.library.lock().unwrap();
        for item in &mut library.items {
            if item["tvdbId"] != json!(tvdb_id) {
                continue;
            }
            if let Some(seasons) = item["seasons"].as_array_mut() {
                for entry in seasons {
                    if entry["seasonNumber"] == json!(season) {
                        entry["statistics"]["percentOfEpisodes"] = json!(percent);
                    }
                }
            }
            recompute_statistics(item);
        }
    }
}

/// Fields the services fill in on an item they hold.
fn finish_item(kind: Kind, item: &mut Value) {
    match kind {
        Kind::Radarr => {
            if item.get("hasFile").is_none() {
                item["hasFile"] = json!(false);
            }
        }
        Kind::Sonarr => {
            if let Some(seasons) = item["seasons"].as_array_mut() {
                for entry in seasons {
                    if entry.get("statistics").is_none() {
                        entry["statistics"] = json!({"percentOfEpisodes": 0.0, "episodeCount": 10, "episodeFileCount": 0});
                    }
                }
            }
            recompute_statistics(item);
        }
    }
}

/// The series' statistics over its monitored seasons but specials, as Sonarr reports them.
fn recompute_statistics(item: &mut Value) {
    let Some(seasons) = item["seasons"].as_array() else {
        return;
    };
    let regular: Vec<f64> = seasons
        .iter()
        .filter(|s| s["seasonNumber"].as_i64().unwrap_or(0) > 0)
        .map(|s| s["statistics"]["percentOfEpisodes"].as_f64().unwrap_or(0.0))
        .collect();
    let percent = if regular.is_empty() {
        0.0
    } else {
        regular.iter().sum::<f64>() / regular.len() as f64
    };
    item["statistics"] = json!({"percentOfEpisodes": percent});
}

type Shared = Arc<Inner>;

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/api/v3/qualityprofile", get(quality_profiles))
        .route("/api/v3/rootfolder", get(root_folders))
        .route("/api/v3/movie/lookup", get(lookup))
        .route("/api/v3/movie/lookup/tmdb", get(movie_lookup_tmdb))
        .route("/api/v3/movie", get(list_items).post(add_item))
        .route("/api/v3/movie/{id}", get(get_item))
        .route("/api/v3/series/lookup", get(lookup))
        .route("/api/v3/series", get(list_items).post(add_item))
        .route("/api/v3/series/{id}", get(get_item).put(put_series))
        .route("/api/v3/command", post(command))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "NotFound"})),
            )
        })
        .layer(axum::middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

/// Records the call, checks the API key, and applies the misbehaviour mode.
async fn gate(
    State(inner): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let api_key = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&query)
                .unwrap_or_default()
                .into_iter()
                .find(|(k, _)| k == "apikey")
                .map(|(_, v)| v)
        });
    inner.library.lock().unwrap().calls.push(Call {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        api_key: api_key.clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    if api_key.as_deref() != Some(inner.api_key.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mode = *inner.mode.lock().unwrap();
    match mode {
        Mode::Slow(delay) => tokio::time::sleep(delay).await,
        Mode::Garbage => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><body>Service Unavailable</body></html>",
            )
                .into_response();
        }
        Mode::Huge => {
            let chunk = Bytes::from(vec![b'['; 1 << 20]);
            let stream = futures_util::stream::iter(
                (0..50).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            return Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap();
        }
        Mode::Normal | Mode::Down => {}
    }
    next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn quality_profiles() -> axum::Json<Value> {
    axum::Json(json!([
        {"id": 4, "name": "HD-1080p", "upgradeAllowed": true, "cutoff": 9, "items": []},
        {"id": 6, "name": "Ultra-HD", "upgradeAllowed": true, "cutoff": 19, "items": []},
    ]))
}

async fn root_folders(State(inner): State<Shared>) -> axum::Json<Value> {
    let path = match inner.kind {
        Kind::Radarr => "/data/movies",
        Kind::Sonarr => "/data/tv",
    };
    axum::Json(
        json!([{"id": 1, "path": path, "accessible": true, "freeSpace": 1_000_000_000_000_i64, "unmappedFolders": []}]),
    )
}

fn id_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Radarr => "tmdbId",
        Kind::Sonarr => "tvdbId",
    }
}

/// A fixture as a lookup answers it: with the library's `id` (and state) when the fake has it.
fn as_lookup(inner: &Inner, fixture: &Value) -> Value {
    let key = id_key(inner.kind);
    let library = inner.library.lock().unwrap();
    library
        .items
        .iter()
        .find(|item| item[key] == fixture[key])
        .cloned()
        .unwrap_or_else(|| fixture.clone())
}

async fn lookup(
    State(inner): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(term) = query.get("term").map(|t| t.trim().to_lowercase()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "term is required"})),
        )
            .into_response();
    };
    let matches: Vec<Value> = inner
        .fixtures
        .iter()
        .filter(|f| {
            if let Some(id) = term.strip_prefix("tmdb:") {
                id.trim()
                    .parse::<i64>()
                    .is_ok_and(|n| f["tmdbId"] == json!(n))
            } else if let Some(id) = term.strip_prefix("tvdb:") {
                id.trim()
                    .parse::<i64>()
                    .is_ok_and(|n| f["tvdbId"] == json!(n))
            } else {
                f["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&term)
            }
        })
        .map(|f| as_lookup(&inner, f))
        .collect();
    axum::Json(Value::Array(matches)).into_response()
}

async fn movie_lookup_tmdb(
    State(inner): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let id = query.get("tmdbId").and_then(|v| v.parse::<i64>().ok());
    match inner
        .fixtures
        .iter()
        .find(|f| Some(f["tmdbId"].as_i64().unwrap_or(-1)) == id)
    {
        Some(fixture) => axum::Json(as_lookup(&inner, fixture)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Movie not found"})),
        )
            .into_response(),
    }
}

async fn list_items(
    State(inner): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    let key = id_key(inner.kind);
    let wanted = query.get(key).and_then(|v| v.parse::<i64>().ok());
    let library = inner.library.lock().unwrap();
    axum::Json(Value::Array(
        library
            .items
            .iter()
            .filter(|item| wanted.is_none_or(|id| item[key] == json!(id)))
            .cloned()
            .collect(),
    ))
}

async fn get_item(State(inner): State<Shared>, Path(id): Path<String>) -> Response {
    let library = inner.library.lock().unwrap();
    match library
        .items
        .iter()
        .find(|item| id.parse::<i64>().is_ok_and(|n| item["id"] == json!(n)))
    {
        Some(item) => axum::Json(item.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "NotFound"})),
        )
            .into_response(),
    }
}

fn failure(property: &str, message: &str, attempted: &Value, code: &str) -> Value {
    json!({"propertyName": property, "errorMessage": message, "attemptedValue": attempted,
           "severity": "error", "errorCode": code})
}

/// `POST /api/v3/movie` / `POST /api/v3/series`, validated as the services do.
async fn add_item(State(inner): State<Shared>, body: Bytes) -> Response {
    let Ok(item) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "Invalid request body"})),
        )
            .into_response();
    };
    let mut errors = Vec::new();
    let text = |field: &str| {
        item.get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let positive = |field: &str| item.get(field).and_then(Value::as_i64).filter(|v| *v > 0);
    if text("title").is_none() {
        errors.push(failure(
            "Title",
            "'Title' must not be empty.",
            &item["title"],
            "NotEmptyValidator",
        ));
    }
    if text("titleSlug").is_none() {
        errors.push(failure(
            "TitleSlug",
            "'Title Slug' must not be empty.",
            &item["titleSlug"],
            "NotEmptyValidator",
        ));
    }
    match positive("qualityProfileId") {
        None => errors.push(failure(
            "QualityProfileId",
            "'Quality Profile Id' must be greater than '0'.",
            &item["qualityProfileId"],
            "GreaterThanValidator",
        )),
        Some(id) if ![4, 6].contains(&id) => errors.push(failure(
            "QualityProfileId",
            "Quality Profile does not exist",
            &json!(id),
            "QualityProfileExistsValidator",
        )),
        Some(_) => {}
    }
    if text("rootFolderPath").is_none() && text("path").is_none() {
        errors.push(failure(
            "Path",
            "'Path' must not be empty.",
            &Value::Null,
            "NotEmptyValidator",
        ));
    }
    let key = id_key(inner.kind);
    let property = if inner.kind == Kind::Radarr {
        "TmdbId"
    } else {
        "TvdbId"
    };
    match positive(key) {
        None => errors.push(failure(
            property,
            &format!("'{property}' must be greater than '0'."),
            &item[key],
            "GreaterThanValidator",
        )),
        Some(id) => {
            let exists = inner
                .library
                .lock()
                .unwrap()
                .items
                .iter()
                .any(|i| i[key] == json!(id));
            if exists {
                let what = if inner.kind == Kind::Radarr {
                    "movie"
                } else {
                    "series"
                };
                let code = if inner.kind == Kind::Radarr {
                    "MovieExistsValidator"
                } else {
                    "SeriesExistsValidator"
                };
                errors.push(failure(
                    property,
                    &format!("This {what} has already been added"),
                    &json!(id),
                    code,
                ));
            }
        }
    }
    if inner.kind == Kind::Sonarr {
        match item.get("seasons").and_then(Value::as_array) {
            Some(seasons)
                if seasons
                    .iter()
                    .all(|s| s["seasonNumber"].is_i64() && s["monitored"].is_boolean()) => {}
            _ => errors.push(failure(
                "Seasons",
                "'Seasons' must be a list of {seasonNumber, monitored}.",
                &item["seasons"],
                "PredicateValidator",
            )),
        }
    }
    if !errors.is_empty() {
        return (StatusCode::BAD_REQUEST, axum::Json(Value::Array(errors))).into_response();
    }
    let mut stored = item.clone();
    let mut library = inner.library.lock().unwrap();
    stored["id"] = json!(library.next_id);
    library.next_id += 1;
    let root = text("rootFolderPath")
        .or(text("path"))
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    stored["path"] = json!(format!("{root}/{}", text("title").unwrap_or_default()));
    finish_item(inner.kind, &mut stored);
    library.items.push(stored.clone());
    (StatusCode::CREATED, axum::Json(stored)).into_response()
}

/// Sonarr `PUT /api/v3/series/{id}`: the monitoring flags of the body replace the stored ones.
async fn put_series(State(inner): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(update) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "Invalid request body"})),
        )
            .into_response();
    };
    let mut library = inner.library.lock().unwrap();
    let Some(item) = library
        .items
        .iter_mut()
        .find(|i| id.parse::<i64>().is_ok_and(|n| i["id"] == json!(n)))
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "NotFound"})),
        )
            .into_response();
    };
    if update["id"] != item["id"] || update["tvdbId"] != item["tvdbId"] {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!([failure(
                "Id",
                "The body is not this series",
                &update["id"],
                "EqualValidator"
            )])),
        )
            .into_response();
    }
    item["monitored"] = update["monitored"].clone();
    if let (Some(stored), Some(sent)) =
        (item["seasons"].as_array_mut(), update["seasons"].as_array())
    {
        for entry in stored {
            if let Some(s) = sent
                .iter()
                .find(|s| s["seasonNumber"] == entry["seasonNumber"])
            {
                entry["monitored"] = s["monitored"].clone();
            }
        }
    }
    (StatusCode::ACCEPTED, axum::Json(item.clone())).into_response()
}

/// `POST /api/v3/command` `{"name", …}` → 201 with the queued command.
async fn command(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = (method, uri, headers);
    let Ok(command) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "Invalid request body"})),
        )
            .into_response();
    };
    let name = command["name"].as_str().unwrap_or_default();
    let known = match inner.kind {
        Kind::Radarr => ["MoviesSearch", "RefreshMovie"].contains(&name),
        Kind::Sonarr => ["SeriesSearch", "SeasonSearch", "RefreshSeries"].contains(&name),
    };
    if !known || command["seriesId"].as_i64().is_none() && inner.kind == Kind::Sonarr {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": format!("Unknown or incomplete command {name}")})),
        )
            .into_response();
    }
    let mut library = inner.library.lock().unwrap();
    library.commands.push(command.clone());
    let id = library.commands.len();
    (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "name": name, "status": "queued", "body": command})),
    )
        .into_response()
}
