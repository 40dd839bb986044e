//! A small client of the Radarr and Sonarr v3 APIs (SPEC O): exactly the calls media requests
//! need, with `X-Api-Key`, a timeout on every call, no redirect to another host, a bound on
//! the size of an answer, and errors that name the service, the HTTP status and the *arr's own
//! error text. It knows nothing of the hub: the domain layer (`crate::domain::requests`)
//! decides what to call.

use std::time::Duration;

use serde_json::{Value, json};

/// Largest answer read from an *arr (a lookup of a popular term is ~1 MB).
pub const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Which *arr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Radarr,
    Sonarr,
}

impl Service {
    /// `Radarr` / `Sonarr`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Radarr => "Radarr",
            Self::Sonarr => "Sonarr",
        }
    }

    /// `radarr` / `sonarr`, as in the setting keys.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Radarr => "radarr",
            Self::Sonarr => "sonarr",
        }
    }
}

/// A failed *arr call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ArrError {
    pub service: Service,
    /// The HTTP status the *arr answered, if it answered.
    pub status: Option<u16>,
    /// `Radarr answered 400: This movie has already been added`, `Sonarr is unreachable: …`.
    pub message: String,
    /// The *arr's own error text, when it gave one.
    pub detail: Option<String>,
}

impl ArrError {
    fn unreachable(service: Service, why: &str) -> Self {
        Self {
            service,
            status: None,
            message: format!("{} is unreachable: {why}", service.name()),
            detail: None,
        }
    }

    fn invalid(service: Service, status: u16, why: &str) -> Self {
        Self {
            service,
            status: Some(status),
            message: format!(
                "{} sent an answer the hub cannot use: {why}",
                service.name()
            ),
            detail: None,
        }
    }

    /// Whether the *arr refused because the movie or series is already in it.
    #[must_use]
    pub fn already_added(&self) -> bool {
        self.status == Some(400)
            && self
                .detail
                .as_deref()
                .is_some_and(|d| d.to_ascii_lowercase().contains("already been added"))
    }
}

/// The *arr's own error text from an error body: Radarr and Sonarr answer validation failures
/// with `[{"propertyName","errorMessage",…}]` and other errors with `{"message"}` or
/// `{"error"}`.
fn error_text(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.get("errorMessage").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("; "),
        Ok(Value::Object(map)) => map
            .get("message")
            .or_else(|| map.get("error"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::from_utf8_lossy(body).trim().to_owned(),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    (!text.is_empty()).then_some(text)
}

/// One configured *arr: its base URL and API key.
#[derive(Clone)]
pub struct Arr {
    service: Service,
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Arr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arr")
            .field("service", &self.service)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The HTTP client every *arr call uses: the timeout, and redirects only within one host.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .first()
                .is_some_and(|first| first.host_str() == attempt.url().host_str());
            if attempt.previous().len() > 5 || !same_host {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("phlix-hub/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Arr {
    /// A client of `service` at `base` (`http(s)://host:port[/prefix]`) with `api_key`.
    #[must_use]
    pub fn new(service: Service, base: &str, api_key: &str, http: reqwest::Client) -> Self {
        Self {
            service,
            base: base.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        }
    }

    /// Which service this is.
    #[must_use]
    pub fn service(&self) -> Service {
        self.service
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ArrError> {
        let service = self.service;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", &self.api_key)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut response = request.send().await.map_err(|err| {
            let why = if err.is_timeout() {
                "no answer in time".to_owned()
            } else if err.is_connect() {
                "connection refused or host not found".to_owned()
            } else if err.is_redirect() {
                "it redirected to another host".to_owned()
            } else {
                // reqwest's text names the URL, which holds no secret (the key is a header).
                err.to_string()
            };
            ArrError::unreachable(service, &why)
        })?;
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE as u64)
        {
            return Err(ArrError::invalid(
                service,
                status,
                "the answer is too large",
            ));
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_RESPONSE {
                        return Err(ArrError::invalid(
                            service,
                            status,
                            "the answer is too large",
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) if err.is_timeout() => {
                    return Err(ArrError::unreachable(
                        service,
                        "the answer did not arrive in time",
                    ));
                }
                Err(_) => return Err(ArrError::unreachable(service, "the connection broke")),
            }
        }
        if !(200..300).contains(&status) {
            let detail = error_text(&bytes);
            let message = match (status, &detail) {
                (401, _) => format!("{} refused the API key (401)", service.name()),
                (_, Some(text)) => format!("{} answered {status}: {text}", service.name()),
                (_, None) => format!("{} answered {status}", service.name()),
            };
            return Err(ArrError {
                service,
                status: Some(status),
                message,
                detail,
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| ArrError::invalid(service, status, "the answer is not JSON"))
    }

    async fn get(&self, path: &str) -> Result<Value, ArrError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    fn list(&self, value: Value, what: &str) -> Result<Vec<Value>, ArrError> {
        match value {
            Value::Array(items) => Ok(items),
            _ => Err(ArrError::invalid(
                self.service,
                200,
                &format!("{what} is not a list"),
            )),
        }
    }

    /// `GET /api/v3/qualityprofile` → the profiles' ids, in the *arr's order.
    ///
    /// # Errors
    /// The call failed or the answer is not a list of profiles.
    pub async fn quality_profile_ids(&self) -> Result<Vec<i64>, ArrError> {
        let items = self.list(
            self.get("/api/v3/qualityprofile").await?,
            "the quality profile list",
        )?;
        Ok(items
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_i64))
            .collect())
    }

    /// `GET /api/v3/rootfolder` → the root folders' paths, in the *arr's order.
    ///
    /// # Errors
    /// The call failed or the answer is not a list of folders.
    pub async fn root_folders(&self) -> Result<Vec<String>, ArrError> {
        let items = self.list(
            self.get("/api/v3/rootfolder").await?,
            "the root folder list",
        )?;
        Ok(items
            .iter()
            .filter_map(|p| p.get("path").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The quality profile to add with: `configured` when non-zero, else the first listed.
    ///
    /// # Errors
    /// The call failed, or the *arr has no profile.
    pub async fn pick_profile(&self, configured: i64) -> Result<i64, ArrError> {
        if configured > 0 {
            return Ok(configured);
        }
        self.quality_profile_ids()
            .await?
            .first()
            .copied()
            .ok_or_else(|| ArrError {
                service: self.service,
                status: None,
                message: format!(
                    "{} has no quality profile; create one in {0}",
                    self.service.name()
                ),
                detail: None,
            })
    }

    /// The root folder to add into: `configured` when non-empty, else the first listed.
    ///
    /// # Errors
    /// The call failed, or the *arr has no root folder.
    pub async fn pick_root_folder(&self, configured: &str) -> Result<String, ArrError> {
        if !configured.is_empty() {
            return Ok(configured.to_owned());
        }
        self.root_folders()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ArrError {
                service: self.service,
                status: None,
                message: format!("{} has no root folder; add one in {0}", self.service.name()),
                detail: None,
            })
    }

    // ---- Radarr ----

    /// Radarr `GET /api/v3/movie?tmdbId=N`: the movie if Radarr has it already.
    ///
    /// # Errors
    /// The call failed.
    pub async fn movie_by_tmdb(&self, tmdb_id: i64) -> Result<Option<Value>, ArrError> {
        let items = self.list(
            self.get(&format!("/api/v3/movie?tmdbId={tmdb_id}")).await?,
            "the movie list",
        )?;
        Ok(items.into_iter().next())
    }

    /// Radarr `GET /api/v3/movie/lookup/tmdb?tmdbId=N`.
    ///
    /// # Errors
    /// The call failed or the answer is not a movie.
    pub async fn movie_lookup_tmdb(&self, tmdb_id: i64) -> Result<Value, ArrError> {
        let movie = self
            .get(&format!("/api/v3/movie/lookup/tmdb?tmdbId={tmdb_id}"))
            .await?;
        if movie.get("title").and_then(Value::as_str).is_none() {
            return Err(ArrError::invalid(
                self.service,
                200,
                "the lookup has no title",
            ));
        }
        Ok(movie)
    }

    /// Radarr `POST /api/v3/movie` with the body SPEC O lists → the new movie.
    ///
    /// # Errors
    /// The call failed (a duplicate is [`ArrError::already_added`]).
    pub async fn add_movie(
        &self,
        lookup: &Value,
        tmdb_id: i64,
        profile: i64,
        root: &str,
    ) -> Result<Value, ArrError> {
        let body = json!({
            "title": lookup.get("title").cloned().unwrap_or(Value::Null),
            "titleSlug": lookup.get("titleSlug").cloned().unwrap_or(Value::Null),
            "year": lookup.get("year").cloned().unwrap_or(json!(0)),
            "tmdbId": tmdb_id,
            "images": lookup.get("images").cloned().unwrap_or(json!([])),
            "qualityProfileId": profile,
            "rootFolderPath": root,
            "monitored": true,
            "minimumAvailability": "released",
            "addOptions": {"searchForMovie": true},
        });
        self.call(reqwest::Method::POST, "/api/v3/movie", Some(&body))
            .await
    }

    /// Radarr `GET /api/v3/movie/{id}`.
    ///
    /// # Errors
    /// The call failed.
    pub async fn movie(&self, id: i64) -> Result<Value, ArrError> {
        self.get(&format!("/api/v3/movie/{id}")).await
    }

    /// Radarr `GET /api/v3/movie/lookup?term=…` or Sonarr `GET /api/v3/series/lookup?term=…`.
    ///
    /// # Errors
    /// The call failed or the answer is not a list.
    pub async fn lookup(&self, term: &str) -> Result<Vec<Value>, ArrError> {
        let path = match self.service {
            Service::Radarr => "/api/v3/movie/lookup",
            Service::Sonarr => "/api/v3/series/lookup",
        };
        let encoded = phlix_common::percent_encode(term);
        let items = self.list(
            self.get(&format!("{path}?term={encoded}")).await?,
            "the lookup",
        )?;
        Ok(items)
    }

    // ---- Sonarr ----

    /// Sonarr `GET /api/v3/series/lookup?term=tmdb:N`: the first result.
    ///
    /// # Errors
    /// The call failed, or Sonarr knows no series with that TMDB id.
    pub async fn series_lookup_tmdb(&self, tmdb_id: i64) -> Result<Value, ArrError> {
        self.lookup(&format!("tmdb:{tmdb_id}"))
            .await?
            .into_iter()
            .find(|s| {
                s.get("tvdbId")
                    .and_then(Value::as_i64)
                    .is_some_and(|id| id > 0)
            })
            .ok_or_else(|| ArrError {
                service: self.service,
                status: Some(200),
                message: format!("Sonarr found no series with TMDB id {tmdb_id}"),
                detail: None,
            })
    }

    /// Sonarr `GET /api/v3/series?tvdbId=N`: the series if Sonarr has it already.
    ///
    /// # Errors
    /// The call failed.
    pub async fn series_by_tvdb(&self, tvdb_id: i64) -> Result<Option<Value>, ArrError> {
        let items = self.list(
            self.get(&format!("/api/v3/series?tvdbId={tvdb_id}"))
                .await?,
            "the series list",
        )?;
        Ok(items.into_iter().next())
    }

    /// Sonarr `POST /api/v3/series` with the body SPEC O lists → the new series.
    ///
    /// # Errors
    /// The call failed (a duplicate is [`ArrError::already_added`]).
    pub async fn add_series(
        &self,
        lookup: &Value,
        season: Option<i32>,
        profile: i64,
        root: &str,
    ) -> Result<Value, ArrError> {
        let seasons = monitored_seasons(lookup, season);
        let body = json!({
            "tvdbId": lookup.get("tvdbId").cloned().unwrap_or(Value::Null),
            "title": lookup.get("title").cloned().unwrap_or(Value::Null),
            "titleSlug": lookup.get("titleSlug").cloned().unwrap_or(Value::Null),
            "images": lookup.get("images").cloned().unwrap_or(json!([])),
            "qualityProfileId": profile,
            "rootFolderPath": root,
            "seasonFolder": true,
            "monitored": true,
            "seasons": seasons,
            "addOptions": {"searchForMissingEpisodes": true},
        });
        self.call(reqwest::Method::POST, "/api/v3/series", Some(&body))
            .await
    }

    /// Sonarr `GET /api/v3/series/{id}`.
    ///
    /// # Errors
    /// The call failed.
    pub async fn series(&self, id: i64) -> Result<Value, ArrError> {
        self.get(&format!("/api/v3/series/{id}")).await
    }

    /// For a series Sonarr has: monitors `season` (or every season but 0) with
    /// `PUT /api/v3/series/{id}`, then asks for a `SeasonSearch` (or `SeriesSearch`).
    ///
    /// # Errors
    /// A call failed.
    pub async fn monitor_existing_series(
        &self,
        mut series: Value,
        season: Option<i32>,
    ) -> Result<i64, ArrError> {
        let id = series
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ArrError::invalid(self.service, 200, "the series has no id"))?;
        if let Some(Value::Array(seasons)) = series.get_mut("seasons") {
            for entry in seasons.iter_mut() {
                let number = entry
                    .get("seasonNumber")
                    .and_then(Value::as_i64)
                    .unwrap_or(-1);
                let wanted = match season {
                    Some(s) => number == i64::from(s),
                    None => number > 0,
                };
                if wanted {
                    entry["monitored"] = json!(true);
                }
            }
        }
        series["monitored"] = json!(true);
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v3/series/{id}"),
            Some(&series),
        )
        .await?;
        let command = match season {
            Some(s) => json!({"name": "SeasonSearch", "seriesId": id, "seasonNumber": s}),
            None => json!({"name": "SeriesSearch", "seriesId": id}),
        };
        self.call(reqwest::Method::POST, "/api/v3/command", Some(&command))
            .await?;
        Ok(id)
    }
}

/// `[{"seasonNumber","monitored"}]` of a lookup: only `season` monitored when given, else every
/// season but the specials (0).
#[must_use]
pub fn monitored_seasons(lookup: &Value, season: Option<i32>) -> Vec<Value> {
    let mut numbers: Vec<i64> = lookup
        .get("seasons")
        .and_then(Value::as_array)
        .map(|seasons| {
            seasons
                .iter()
                .filter_map(|s| s.get("seasonNumber").and_then(Value::as_i64))
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = season
        && !numbers.contains(&i64::from(s))
    {
        numbers.push(i64::from(s));
    }
    numbers.sort_unstable();
    numbers
        .into_iter()
        .map(|n| {
            let monitored = match season {
                Some(s) => n == i64::from(s),
                None => n > 0,
            };
            json!({"seasonNumber": n, "monitored": monitored})
        })
        .collect()
}

/// The poster of a lookup result: the `remoteUrl` (else `url`) of its `poster` image, when it
/// is an http(s) URL.
#[must_use]
pub fn poster_url(item: &Value) -> Option<String> {
    item.get("images")?
        .as_array()?
        .iter()
        .find(|image| image.get("coverType").and_then(Value::as_str) == Some("poster"))
        .and_then(|image| {
            image
                .get("remoteUrl")
                .or_else(|| image.get("url"))
                .and_then(Value::as_str)
        })
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .map(str::to_owned)
}

/// Whether the *arr has downloaded what a request asked for: Radarr `hasFile`; Sonarr the
/// season's `statistics.percentOfEpisodes` (the series' when no season) at 100.
#[must_use]
pub fn is_available(service: Service, item: &Value, season: Option<i32>) -> bool {
    match service {
        Service::Radarr => item.get("hasFile").and_then(Value::as_bool) == Some(true),
        Service::Sonarr => {
            let statistics = match season {
                Some(s) => item
                    .get("seasons")
                    .and_then(Value::as_array)
                    .and_then(|seasons| {
                        seasons.iter().find(|e| {
                            e.get("seasonNumber").and_then(Value::as_i64) == Some(i64::from(s))
                        })
                    })
                    .and_then(|e| e.get("statistics")),
                None => item.get("statistics"),
            };
            statistics
                .and_then(|st| st.get("percentOfEpisodes"))
                .and_then(Value::as_f64)
                .is_some_and(|p| p >= 100.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_reads_validation_lists_and_messages() {
        assert_eq!(
            error_text(br#"[{"propertyName":"TmdbId","errorMessage":"This movie has already been added"}]"#).as_deref(),
            Some("This movie has already been added")
        );
        assert_eq!(
            error_text(br#"{"message":"NotFound"}"#).as_deref(),
            Some("NotFound")
        );
        assert_eq!(error_text(b"  ").as_deref(), None);
        assert_eq!(
            error_text(b"<html>oops</html>").as_deref(),
            Some("<html>oops</html>")
        );
    }

    #[test]
    fn only_the_requested_season_is_monitored() {
        let lookup =
            json!({"seasons": [{"seasonNumber": 0}, {"seasonNumber": 1}, {"seasonNumber": 2}]});
        assert_eq!(
            monitored_seasons(&lookup, Some(2)),
            vec![
                json!({"seasonNumber": 0, "monitored": false}),
                json!({"seasonNumber": 1, "monitored": false}),
                json!({"seasonNumber": 2, "monitored": true}),
            ]
        );
        assert_eq!(
            monitored_seasons(&lookup, None)
                .iter()
                .map(|s| s["monitored"].as_bool().unwrap_or_default())
                .collect::<Vec<_>>(),
            vec![false, true, true]
        );
    }

    #[test]
    fn availability_follows_files_and_season_statistics() {
        assert!(is_available(
            Service::Radarr,
            &json!({"hasFile": true}),
            None
        ));
        assert!(!is_available(
            Service::Radarr,
            &json!({"hasFile": false}),
            None
        ));
        let series = json!({"statistics": {"percentOfEpisodes": 50.0}, "seasons": [
            {"seasonNumber": 1, "statistics": {"percentOfEpisodes": 100.0}},
            {"seasonNumber": 2, "statistics": {"percentOfEpisodes": 0.0}}]});
        assert!(is_available(Service::Sonarr, &series, Some(1)));
        assert!(!is_available(Service::Sonarr, &series, Some(2)));
        assert!(!is_available(Service::Sonarr, &series, None));
    }
}
