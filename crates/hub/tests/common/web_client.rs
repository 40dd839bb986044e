//! A cookie-keeping HTTP client that uses the pages as a browser without JavaScript would:
//! it follows no redirects (tests assert them), keeps the cookies the hub sets and sends forms.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};

/// One answer: status, headers, body, the `Location` and every `Set-Cookie` line.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
}

impl Page {
    /// The `Set-Cookie` line of `name`, if the answer set it.
    pub fn cookie_line(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|line| line.starts_with(&format!("{name}=")))
    }
}

pub struct WebClient {
    pub base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub origin: Option<String>,
}

impl WebClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            origin: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header(COOKIE, self.cookie_header());
        }
        if let Some(origin) = &self.origin {
            request = request.header("Origin", origin);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
            location,
            set_cookies,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts exactly `fields` (no CSRF token added).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        self.send(request).await
    }

    /// Posts `fields` with the `_csrf` field a page of the hub would carry.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        if !self.cookies.contains_key("phlix_hub_csrf") {
            self.get("/app/login").await;
        }
        let csrf = self.cookies["phlix_hub_csrf"].clone();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// Creates an account through the sign-up form; the client is then signed in.
    pub async fn sign_up(&mut self, username: &str, password: &str) -> Page {
        let email = format!("{username}@example.com");
        let page = self
            .submit(
                "/app/signup",
                &[
                    ("username", username),
                    ("email", &email),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "sign-up of {username}: {}", page.body);
        page
    }
}
