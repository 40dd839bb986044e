//! Drives a real headless Chromium over the Chrome DevTools Protocol (CDP): a small client of
//! our own over tokio-tungstenite — navigate, type with real input events, click at an
//! element's position, press keys, evaluate JavaScript, emulate media and viewports, and save
//! screenshots. Chromium is Debian's `/usr/bin/chromium` (`PHLIX_CHROMIUM` overrides it); the
//! test command installs it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// How long [`Page::wait_for`] waits by default.
pub const WAIT: Duration = Duration::from_secs(15);

/// The Chromium binary.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("PHLIX_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Where screenshots go: `<workspace>/target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("screenshots")
}

/// A running browser; killed when dropped.
pub struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    sink: Arc<Mutex<Sink>>,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and connects to its DevTools socket.
    pub async fn launch() -> Self {
        let path = chromium_path();
        assert!(
            path.exists(),
            "{} not found: install Debian's chromium package (scripts/test does) or set PHLIX_CHROMIUM",
            path.display()
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(&path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited before opening its DevTools socket");
        })
        .await
        .expect("chromium opened its DevTools socket within 30 s");
        // Keep draining stderr so chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let (sink, mut stream) = ws.split();
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if let Some(id) = value.get("id").and_then(Value::as_u64)
                    && let Some(tx) = routes.lock().unwrap().remove(&id)
                {
                    let _ = tx.send(value);
                }
            }
        });
        Self {
            _child: child,
            _profile: profile,
            sink: Arc::new(Mutex::new(sink)),
            pending,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.sink
            .lock()
            .await
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"))
            .unwrap();
        if let Some(error) = reply.get("error") {
            panic!("{method} failed: {error}");
        }
        reply["result"].clone()
    }

    /// A new tab.
    pub async fn new_page(&self) -> Page<'_> {
        self.open_page(json!({"url": "about:blank"})).await
    }

    /// A tab in a new browser context: its own cookies and storage, as a second browser
    /// profile would have (a second person on another computer).
    pub async fn new_isolated_page(&self) -> Page<'_> {
        let context = self
            .call(None, "Target.createBrowserContext", json!({}))
            .await;
        let id = context["browserContextId"].as_str().unwrap().to_owned();
        self.open_page(json!({"url": "about:blank", "browserContextId": id}))
            .await
    }

    async fn open_page(&self, params: Value) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", params).await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        let page = Page {
            browser: self,
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        page.call("Page.enable", json!({})).await;
        page
    }
}

/// One tab.
pub struct Page<'a> {
    browser: &'a Browser,
    session: String,
}

impl Page<'_> {
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Evaluates `expression` (awaiting a promise) and returns its JSON value.
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is `true`.
    pub async fn wait_for(&self, expression: &str, what: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self
                .call(
                    "Runtime.evaluate",
                    json!({"expression": expression, "returnByValue": true}),
                )
                .await;
            if value["result"]["value"] == json!(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited {WAIT:?} for {what} ({expression}); page: {} {}",
                self.url().await,
                self.text("body")
                    .await
                    .chars()
                    .take(600)
                    .collect::<String>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Loads `url` and waits until the new document is complete (a marker on the old
    /// document's `window` tells the two apart).
    pub async fn goto(&self, url: &str) {
        self.eval("window.__phlixOldDocument = true").await;
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for(
            "window.__phlixOldDocument !== true && document.readyState === 'complete'",
            &format!("{url} to load"),
        )
        .await;
    }

    /// Waits until the location's path (and query) is `path`.
    pub async fn wait_path(&self, path: &str) {
        let expression = format!(
            "(location.pathname + location.search) === {} && document.readyState === 'complete'",
            json!(path)
        );
        self.wait_for(&expression, &format!("the page {path}"))
            .await;
    }

    pub async fn url(&self) -> String {
        self.eval("location.href")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The text of the first element matching `selector` ("" when none).
    pub async fn text(&self, selector: &str) -> String {
        let expression = format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        );
        self.eval(&expression)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The HTTP status of the current document.
    pub async fn status(&self) -> u64 {
        self.eval("performance.getEntriesByType('navigation')[0].responseStatus")
            .await
            .as_u64()
            .unwrap_or(0)
    }

    /// Focuses `selector` and types `text` as keyboard input.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let focus = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return false; el.focus(); el.select && el.select(); return document.activeElement === el; }})()",
            json!(selector)
        );
        assert_eq!(self.eval(&focus).await, json!(true), "focus {selector}");
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Picks the option `value` of the `<select>` matching `selector`, firing the events a
    /// user's choice fires.
    pub async fn select(&self, selector: &str, value: &str) {
        let expression = format!(
            "(() => {{ const el = document.querySelector({0}); if (!el) return false; el.focus(); el.value = {1}; el.dispatchEvent(new Event('input', {{bubbles: true}})); el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value === {1}; }})()",
            json!(selector),
            json!(value)
        );
        assert_eq!(
            self.eval(&expression).await,
            json!(true),
            "pick {value} in {selector}"
        );
    }

    /// Clicks the middle of the first element matching `selector` with the mouse.
    pub async fn click(&self, selector: &str) {
        let locate = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) return null; el.scrollIntoView({{block: 'center'}}); const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        );
        let point = self.eval(&locate).await;
        let (x, y) = (
            point[0]
                .as_f64()
                .unwrap_or_else(|| panic!("no element {selector}")),
            point[1].as_f64().unwrap(),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Presses a key (`Enter`, `Tab`) on the focused element.
    pub async fn press(&self, key: &str) {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            other => panic!("press: unsupported key {other}"),
        };
        let mut down =
            json!({"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down).await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code}),
        )
        .await;
    }

    /// Emulates `prefers-color-scheme` (`light`, `dark`, or "" for the default).
    pub async fn color_scheme(&self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Emulates a phone-sized viewport, or restores the window when `None`.
    pub async fn viewport(&self, size: Option<(u32, u32)>) {
        match size {
            Some((width, height)) => {
                self.call(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": width, "height": height, "deviceScaleFactor": 2, "mobile": true}),
                )
                .await;
            }
            None => {
                self.call("Emulation.clearDeviceMetricsOverride", json!({}))
                    .await;
            }
        }
    }

    /// Saves a PNG screenshot as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG image");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}
