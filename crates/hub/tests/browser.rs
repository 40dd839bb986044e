//! The owner's journey in a real headless Chromium: sign up, sign out, sign in with the
//! keyboard, claim a server that a fake Phlix server asked for, watch it go offline and come
//! back online and its relay open without reloading, read its charts, mint a relay token,
//! change a setting, be refused a CSRF-less form, sign out. Screenshots of every main page go
//! to `target/screenshots/` (light, dark and phone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestHub;
use common::browser::{Browser, Page};
use common::fake_server::FakePhlixServer;
use serde_json::{Value, json};

fn heartbeat_with_metrics(server: &FakePhlixServer, cpu: f64) -> Value {
    let mut body = server.heartbeat_body(&[("1", "Movies"), ("2", "Shows"), ("3", "Music")]);
    body["hostMetrics"] = json!({
        "cpuPercent": cpu, "memUsedBytes": (3_i64 << 30) + (cpu as i64) * (40 << 20),
        "memTotalBytes": 8_i64 << 30, "diskUsedBytes": 1_i64 << 40, "diskTotalBytes": 4_i64 << 40,
        "load1": 0.4, "netRxBytes": 1000, "netTxBytes": 2000,
    });
    body
}

async fn badge(page: &Page<'_>, server_id: &str) -> String {
    page.eval(&format!(
        "(document.querySelector('tr[data-server-id=\"{server_id}\"] [data-field=status]') || {{textContent: ''}}).textContent"
    ))
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_uses_the_hub_in_a_real_browser() {
    let hub = TestHub::start_with(|args| {
        args.reaper_interval = Duration::from_millis(250);
        args.offline_after = Duration::from_secs(2);
    })
    .await;
    let base = hub.url("");
    let browser = Browser::launch().await;
    let page = browser.new_page().await;

    // Unauthenticated: sent to the login page, which remembers where we were going.
    page.goto(&format!("{base}/app/servers")).await;
    page.wait_path("/app/login?next=%2Fapp%2Fservers").await;
    // The form's first field has focus.
    assert_eq!(page.eval("document.activeElement.id").await, "login");
    page.screenshot("login").await;

    // Sign up through the link on the login page.
    page.click("a[href^='/app/signup']").await;
    page.wait_path("/app/signup?next=%2Fapp%2Fservers").await;
    page.type_into("#username", "alice").await;
    page.type_into("#email", "alice@example.com").await;
    page.type_into("#password", "correct horse battery").await;
    page.screenshot("signup").await;
    page.click("button[type=submit].primary").await;
    page.wait_path("/app/servers").await;
    assert!(page.text("main").await.contains("No servers yet"));
    assert!(page.text("header").await.contains("alice"));
    page.wait_for(
        "document.getElementById('live-state').dataset.state === 'open'",
        "the live-event stream to connect",
    )
    .await;

    // Sign out, sign in again with the keyboard only.
    page.click("header form button").await;
    page.wait_path("/app/login?signed_out=1").await;
    assert!(page.text("main").await.contains("You are signed out."));
    page.type_into("#login", "alice").await;
    page.type_into("#password", "correct horse battery").await;
    page.press("Enter").await;
    page.wait_path("/app/servers").await;
    // Keyboard order: the first Tab reaches the skip link, the next one the brand link.
    page.press("Tab").await;
    assert_eq!(page.eval("document.activeElement.className").await, "skip");
    page.press("Tab").await;
    assert_eq!(page.eval("document.activeElement.className").await, "brand");

    // A Phlix server asks for a claim code; the owner types it in lower case without the dash.
    let mut server = FakePhlixServer::new(&base, "Living-room NAS");
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    page.click("nav a[href='/app/claim-server']").await;
    page.wait_path("/app/claim-server").await;
    let typed = server
        .claim_code
        .clone()
        .unwrap()
        .to_lowercase()
        .replace('-', "");
    page.type_into("#code", &typed).await;
    page.click("button[type=submit].primary").await;
    page.wait_for(
        "document.querySelector('h1') && document.querySelector('h1').textContent === 'Server paired'",
        "the claim to succeed",
    )
    .await;
    assert_eq!(page.text("#claimed-name").await, "Living-room NAS");
    page.screenshot("claim-server").await;
    assert_eq!(server.poll().await["status"], "claimed");
    let server_id = server.server_id();

    // The servers page, live: the silent server goes offline, then a heartbeat brings it
    // online and its tunnel opens — all without reloading (the marker survives).
    page.click("a[href='/app/servers'].button").await;
    page.wait_path("/app/servers").await;
    page.eval("window.__sameDocument = true").await;
    page.wait_for(
        "document.getElementById('live-state').dataset.state === 'open'",
        "the live-event stream to connect",
    )
    .await;
    let offline = format!(
        "document.querySelector('tr[data-server-id=\"{server_id}\"] [data-field=status]').textContent === 'offline'"
    );
    page.wait_for(&offline, "the server to be shown offline")
        .await;
    for cpu in [18.0, 42.0, 27.0, 35.0] {
        let (status, body) = server
            .send_heartbeat(&heartbeat_with_metrics(&server, cpu))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let online = offline.replace("'offline'", "'online'");
    page.wait_for(&online, "the server to turn online live")
        .await;
    let enrollment = server.enrollment.clone().unwrap();
    let (tunnel, _) =
        common::fake_tunnel::open(hub.tunnel, &server_id, &enrollment.enrollment_jwt).await;
    page.wait_for(
        &format!("document.querySelector('tr[data-server-id=\"{server_id}\"] [data-field=relay]').dataset.active === '1'"),
        "the relay to be shown active",
    )
    .await;
    assert_eq!(
        page.eval("window.__sameDocument === true").await,
        json!(true),
        "no reload"
    );
    assert_eq!(badge(&page, &server_id).await, "online");
    assert_eq!(
        page.eval(&format!("document.querySelector('tr[data-server-id=\"{server_id}\"] [data-field=libraries]').textContent")).await,
        "3",
        "the library count follows the heartbeats"
    );
    // Let the change highlight fade before the picture.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    page.screenshot("servers").await;

    // The dark theme follows the system preference; the phone layout does not scroll sideways.
    let light = page
        .eval("getComputedStyle(document.body).backgroundColor")
        .await;
    page.color_scheme("dark").await;
    let dark = page
        .eval("getComputedStyle(document.body).backgroundColor")
        .await;
    assert_ne!(light, dark, "the page follows prefers-color-scheme");
    page.screenshot("servers-dark").await;
    page.color_scheme("").await;
    page.viewport(Some((390, 844))).await;
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "no horizontal scrolling on a phone"
    );
    page.screenshot("servers-phone").await;
    page.viewport(None).await;

    // Server detail: charts from the host metrics, a relay token shown once.
    page.click(&format!("tr[data-server-id=\"{server_id}\"] a"))
        .await;
    page.wait_path(&format!("/app/servers/{server_id}")).await;
    assert_eq!(
        page.eval("document.querySelectorAll('svg.sparkline').length")
            .await,
        json!(2)
    );
    assert!(page.text("main").await.contains("Movies, Shows, Music"));
    page.click("#mint-token").await;
    page.wait_for(
        "!!document.getElementById('relay-token')",
        "the minted token",
    )
    .await;
    let token = page
        .eval("document.getElementById('relay-token').value")
        .await;
    assert_eq!(
        token.as_str().map(str::len),
        Some(64),
        "64 lowercase hex: {token}"
    );
    page.screenshot("server-detail").await;
    drop(tunnel);

    // Settings (alice is the first account, so an admin): a bad value is explained.
    page.click("nav a[href='/app/settings']").await;
    page.wait_path("/app/settings").await;
    page.type_into("[name='auth.access_ttl']", "5").await;
    page.click("button[type=submit].primary").await;
    page.wait_for(
        "document.body.innerText.includes('Nothing was saved')",
        "the validation message",
    )
    .await;
    assert_eq!(page.status().await, 422);
    page.screenshot("settings").await;

    // A form post without its CSRF token is refused.
    page.goto(&format!("{base}/app/claim-server")).await;
    page.eval("document.querySelector('main form input[name=_csrf]').remove(); true")
        .await;
    page.type_into("#code", "ABCD-EFGH").await;
    page.click("button[type=submit].primary").await;
    page.wait_for(
        "document.querySelector('h1') && document.querySelector('h1').textContent === 'Form refused'",
        "the refusal page",
    )
    .await;
    assert_eq!(page.status().await, 403);

    // Sign out: the pages need a session again.
    page.goto(&format!("{base}/app/servers")).await;
    page.click("header form button").await;
    page.wait_path("/app/login?signed_out=1").await;
    page.goto(&format!("{base}/app/servers/{server_id}")).await;
    page.wait_path(&format!("/app/login?next=%2Fapp%2Fservers%2F{server_id}"))
        .await;
    drop(page);
    drop(browser);
    hub.stop().await;
}
