//! The session cookies (SPEC F.1) that the JSON API sets and the pages read: one `Set-Cookie`
//! format for all of them.

use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::CookieJar;
use phlix_proto::auth::AuthResponse;

use crate::config::Config;
use crate::domain::Core;
use crate::domain::settings::REFRESH_TTL;

/// Cookie holding the access token (SSR pages and `GET` API calls).
pub const ACCESS_COOKIE: &str = "phlix_hub_token";
/// Cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "phlix_hub_refresh";

/// The non-empty value of cookie `name`, if the request has one.
#[must_use]
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Appends one `Set-Cookie`: HttpOnly, SameSite=Lax, Path=/, Secure behind an https public
/// URL; without `max_age` it is a browser-session cookie.
pub fn set_cookie(
    headers: &mut HeaderMap,
    config: &Config,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    let max_age = max_age.map_or_else(String::new, |age| format!("; Max-Age={age}"));
    let secure = if config.public_scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let text = format!("{name}={value}; Path=/{max_age}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Appends the two session cookies of a freshly issued token pair.
pub async fn set_session_cookies(headers: &mut HeaderMap, core: &Core, tokens: &AuthResponse) {
    let refresh_ttl = REFRESH_TTL
        .get(&core.store)
        .await
        .unwrap_or(REFRESH_TTL.default);
    let config = &core.config;
    set_cookie(
        headers,
        config,
        ACCESS_COOKIE,
        &tokens.access_token,
        Some(tokens.expires_in),
    );
    set_cookie(
        headers,
        config,
        REFRESH_COOKIE,
        &tokens.refresh_token,
        Some(refresh_ttl),
    );
}

/// Appends the `Set-Cookie`s that delete both session cookies.
pub fn clear_session_cookies(headers: &mut HeaderMap, config: &Config) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        set_cookie(headers, config, name, "", Some(0));
    }
}
