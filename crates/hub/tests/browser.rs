//! The owner's journey in a real headless Chromium: sign up, sign out, sign in with the
//! keyboard, claim a server that a fake Phlix server asked for, watch it go offline and come
//! back online and its relay open without reloading, read its charts, mint a relay token,
//! change a setting, be refused a CSRF-less form, sign out. Then sharing: a library shared
//! and an invite link made on the server page, opened by a second person in a browser context
//! of their own who signs up through it and accepts, and the shares pages following changes
//! live. Then webhooks: an endpoint added against a real receiver, its secret shown once, a
//! test sent and its answer read, the delivery log and a redelivery, deletion. Screenshots of
//! every main page go to `target/screenshots/` (light, dark and phone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::TestHub;
use common::browser::{Browser, Page};
use common::fake_server::FakePhlixServer;
use common::receiver::Receiver;
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

// ---------------------------------------------------------------------------------------------
// Sharing and invite links (SPEC M, N, Q.5)

/// `method path` of the JSON API with a bearer token.
async fn api(
    hub: &TestHub,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http_client
        .request(method, hub.url(path))
        .header("Accept-Phlix-Protocol", "v1")
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs `page` in through the login form, then waits for `next`.
async fn sign_in(page: &Page<'_>, base: &str, username: &str, next: &str) {
    page.goto(&format!(
        "{base}/app/login?next={}",
        next.replace('/', "%2F")
    ))
    .await;
    page.type_into("#login", username).await;
    page.type_into("#password", "correct horse").await;
    page.click("button[type=submit].primary").await;
    page.wait_path(next).await;
}

/// Waits until the page's event stream is open.
async fn live(page: &Page<'_>) {
    page.wait_for(
        "!!document.getElementById('live-state') && document.getElementById('live-state').dataset.state === 'open'",
        "the live-event stream to connect",
    )
    .await;
}

/// The number of rows with `data-share-id="<id>"` on the page.
async fn share_rows(page: &Page<'_>, share_id: &str) -> u64 {
    page.eval(&format!(
        "document.querySelectorAll('[data-share-id=\"{share_id}\"]').length"
    ))
    .await
    .as_u64()
    .unwrap()
}

/// A fake server claimed by the holder of `token` through the API, reporting Movies and Shows.
async fn claimed_server(hub: &TestHub, token: &str, name: &str) -> FakePhlixServer {
    let mut server = FakePhlixServer::new(&hub.url(""), name);
    let (status, body) = server.request_claim().await;
    assert_eq!(status, 200, "{body}");
    let code = server.claim_code.clone().unwrap();
    let (status, body) = api(
        hub,
        token,
        reqwest::Method::POST,
        "/api/v1/server-claims/claim",
        Some(json!({"claim_code": code})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.poll().await["status"], "claimed");
    let (status, body) = server
        .heartbeat(&[("lib-movies", "Movies"), ("lib-shows", "Shows")])
        .await;
    assert_eq!(status, 200, "{body}");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_shares_and_a_friend_joins_through_an_invite_link() {
    let hub = TestHub::start().await;
    let base = hub.url("");
    let alice = hub.register("alice", "correct horse").await;
    let carol = hub.register("carol", "correct horse").await;
    let server = claimed_server(&hub, &alice.access_token, "Family NAS").await;
    let server_id = server.server_id();
    let browser = Browser::launch().await;

    // The owner shares Movies with carol, read and write, from the server page.
    let owner = browser.new_page().await;
    sign_in(&owner, &base, "alice", &format!("/app/servers/{server_id}")).await;
    assert!(owner.text("nav").await.contains("Shares"));
    owner.select("#share-library", "lib-movies").await;
    owner.type_into("#share-email", "carol@example.com").await;
    owner.select("#share-permission", "readwrite").await;
    owner.click("#share-submit").await;
    owner
        .wait_for(
            "!!document.getElementById('sharing-notice') && document.getElementById('sharing-notice').textContent === 'Movies is now shared with carol.'",
            "the share's notice",
        )
        .await;
    let shared_with = owner.text("#server-shares").await;
    assert!(
        shared_with.contains("carol") && shared_with.contains("Movies"),
        "{shared_with}"
    );
    // A typo in the e-mail is said on the field.
    owner.type_into("#share-email", "nobody@example.com").await;
    owner.click("#share-submit").await;
    owner
        .wait_for(
            "!!document.getElementById('share-email-error')",
            "the e-mail field's message",
        )
        .await;
    assert_eq!(owner.status().await, 404);
    assert_eq!(
        owner
            .eval("document.getElementById('share-email').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    owner.screenshot("server-sharing").await;

    // An invite link to Shows, one use, three days: shown once, with a working copy button.
    owner.select("#invite-library", "lib-shows").await;
    owner.type_into("#invite-expires", "3").await;
    owner.click("#invite-submit").await;
    owner
        .wait_for("!!document.getElementById('invite-link')", "the new link")
        .await;
    let link = owner
        .eval("document.getElementById('invite-link').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    // The link is on the hub's public URL; the test hub's `--public-url` has no port, so the
    // guest below opens its path on the hub's real address.
    let prefix = "http://127.0.0.1/invite/";
    assert!(link.starts_with(prefix), "{link}");
    let token = link[prefix.len()..].to_owned();
    assert_eq!(token.len(), 64, "{link}");
    assert_eq!(
        owner
            .eval("document.querySelector('button[data-copy=\"invite-link\"]').hidden")
            .await,
        json!(false),
        "the script shows the copy button"
    );
    owner.click("button[data-copy='invite-link']").await;
    owner
        .wait_for(
            "document.querySelector('button[data-copy=\"invite-link\"]').textContent === 'Copied'",
            "the copy button to confirm",
        )
        .await;
    owner.screenshot("invite-created").await;

    // Sign-ups are closed: only the link lets a newcomer in.
    let store = hub.store().await;
    store
        .put_setting(
            "auth.signups_disabled",
            "true",
            "bool",
            phlix_hub::auth::now_unix(),
        )
        .await
        .unwrap();

    // Bob, in a browser context of his own, opens the link signed out.
    let guest = browser.new_isolated_page().await;
    guest.goto(&format!("{base}/invite/{token}")).await;
    let invitation = format!("/app/invite/{token}");
    guest.wait_path(&invitation).await;
    assert_eq!(
        guest.text("h1").await,
        "alice invites you to Shows on Family NAS"
    );
    let facts = guest.text("#invitation").await;
    assert!(
        facts.contains("Read only") && facts.contains("UTC"),
        "{facts}"
    );
    assert!(
        !guest.text("header").await.contains("alice"),
        "the guest is not signed in as the owner"
    );
    guest.screenshot("invite-signed-out").await;
    guest.click("#invite-signup").await;
    guest
        .wait_path(&format!(
            "/app/signup?next=%2Fapp%2Finvite%2F{token}&invite={token}"
        ))
        .await;
    assert!(guest.text("#invited").await.contains("invite link"));
    guest.type_into("#username", "bob").await;
    guest.type_into("#email", "bob@example.com").await;
    guest.type_into("#password", "correct horse").await;
    guest.click("button[type=submit].primary").await;
    guest.wait_path(&invitation).await;
    guest
        .wait_for("!!document.getElementById('accept')", "the Accept button")
        .await;
    assert!(guest.text("header").await.contains("bob"));
    guest.screenshot("invite-accept").await;
    guest.click("#accept").await;
    guest
        .wait_for(
            "location.pathname === '/app/shares' && document.readyState === 'complete'",
            "the shares page",
        )
        .await;
    assert_eq!(
        guest.text("#shares-notice").await,
        "Invitation accepted: alice shares Shows on Family NAS with you."
    );
    let incoming = guest.text("#incoming-shares").await;
    assert!(
        incoming.contains("Family NAS") && incoming.contains("Shows") && incoming.contains("alice"),
        "{incoming}"
    );
    live(&guest).await;
    guest.screenshot("shares-collaborator").await;

    // The owner's /app/shares lists both shares and follows changes without reloading: carol
    // leaves through the API, a new share made through the API appears.
    owner.goto(&format!("{base}/app/shares")).await;
    live(&owner).await;
    owner.eval("window.__sameDocument = true").await;
    let (status, lists) = api(
        &hub,
        &carol.access_token,
        reqwest::Method::GET,
        "/api/v1/me/shares",
        None,
    )
    .await;
    assert_eq!(status, 200, "{lists}");
    let carols = lists["incoming"][0]["share_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(share_rows(&owner, &carols).await, 1);
    assert_eq!(
        owner
            .eval("document.querySelectorAll('#outgoing-shares [data-share-id]').length")
            .await,
        json!(2)
    );
    let (status, _) = api(
        &hub,
        &carol.access_token,
        reqwest::Method::DELETE,
        &format!("/api/v1/me/shares/{carols}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    owner
        .wait_for(
            &format!("document.querySelectorAll('[data-share-id=\"{carols}\"]').length === 0"),
            "carol's share to leave the owner's page live",
        )
        .await;
    let (status, body) = api(
        &hub,
        &alice.access_token,
        reqwest::Method::POST,
        "/api/v1/me/shares",
        Some(
            json!({"collaborator_email": "carol@example.com", "server_id": server_id,
            "library_id": "lib-shows", "library_name": "Shows"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let new_share = body["id"].as_str().unwrap().to_owned();
    owner
        .wait_for(
            &format!("document.querySelectorAll('#outgoing-shares [data-share-id=\"{new_share}\"]').length === 1"),
            "the new share to appear on the owner's page live",
        )
        .await;
    assert_eq!(
        owner.eval("window.__sameDocument === true").await,
        json!(true),
        "no reload"
    );
    owner.screenshot("shares-owner").await;

    // The owner revokes bob's share on the page; bob's list no longer has it.
    let bobs = guest
        .eval("document.querySelector('#incoming-shares [data-share-id]').dataset.shareId")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    owner
        .click(&format!("tr[data-share-id=\"{bobs}\"] button.revoke"))
        .await;
    owner.wait_path("/app/shares?done=revoked").await;
    assert_eq!(share_rows(&owner, &bobs).await, 0);
    guest.goto(&format!("{base}/app/shares")).await;
    assert_eq!(share_rows(&guest, &bobs).await, 0);
    assert!(
        guest
            .text("#incoming-shares")
            .await
            .contains("Nobody shares")
    );

    // On a phone the share lists do not scroll sideways.
    owner.viewport(Some((390, 844))).await;
    assert_eq!(
        owner
            .eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "no horizontal scrolling on a phone"
    );
    owner.screenshot("shares-phone").await;
    owner.viewport(None).await;
    drop((owner, guest));
    drop(browser);
    store.close().await;
    hub.stop().await;
}

/// The collaborator's side of a revocation, live: their open `/app/shares` loses the row the
/// moment the owner revokes the share, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_share_leaves_the_collaborators_open_page_without_reload() {
    let hub = TestHub::start().await;
    let base = hub.url("");
    let alice = hub.register("alice", "correct horse").await;
    hub.register("bob", "correct horse").await;
    let server = claimed_server(&hub, &alice.access_token, "Family NAS").await;
    let server_id = server.server_id();
    let (status, share) = api(
        &hub,
        &alice.access_token,
        reqwest::Method::POST,
        "/api/v1/me/shares",
        Some(
            json!({"collaborator_email": "bob@example.com", "server_id": server_id,
            "library_id": "lib-movies", "library_name": "Movies"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{share}");
    let share_id = share["id"].as_str().unwrap().to_owned();

    let browser = Browser::launch().await;
    let owner = browser.new_page().await;
    sign_in(&owner, &base, "alice", "/app/shares").await;
    let guest = browser.new_isolated_page().await;
    sign_in(&guest, &base, "bob", "/app/shares").await;
    live(&guest).await;
    guest.eval("window.__sameDocument = true").await;
    assert_eq!(share_rows(&guest, &share_id).await, 1);

    owner
        .click(&format!("tr[data-share-id=\"{share_id}\"] button.revoke"))
        .await;
    owner.wait_path("/app/shares?done=revoked").await;
    guest
        .wait_for(
            &format!("document.querySelectorAll('[data-share-id=\"{share_id}\"]').length === 0"),
            "the revoked share to leave the collaborator's page live",
        )
        .await;
    assert_eq!(
        guest.eval("window.__sameDocument === true").await,
        json!(true),
        "no reload"
    );
    guest
        .wait_for(
            "document.getElementById('incoming-shares').innerText.includes('Nobody shares')",
            "the emptied list to show its empty state",
        )
        .await;
    guest.screenshot("shares-collaborator-revoked").await;
    drop((owner, guest));
    drop(browser);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Webhooks (SPEC P, Q.5)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_adds_a_webhook_and_reads_its_delivery_log_in_a_real_browser() {
    let hub = TestHub::start().await;
    let base = hub.url("");
    let (receiver, addr) = Receiver::start().await;
    receiver.reply("browser", r#"{"received":true}"#);
    hub.register("alice", "correct horse").await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    sign_in(&page, &base, "alice", "/app/servers").await;

    // Webhooks is in the navigation; the page starts empty.
    page.click("nav a[href='/app/webhooks']").await;
    page.wait_path("/app/webhooks").await;
    assert_eq!(
        page.eval("document.querySelector('nav a[aria-current=page]').textContent")
            .await,
        "Webhooks"
    );
    assert!(page.text("#no-webhooks").await.contains("No endpoint yet"));

    // Sent empty, the form says what each field needs.
    page.click("#webhook-submit").await;
    page.wait_for(
        "!!document.getElementById('webhook-events-error')",
        "the field messages",
    )
    .await;
    assert_eq!(page.status().await, 400);
    assert!(
        page.text("#webhook-url-error")
            .await
            .contains("Enter the URL")
    );
    assert_eq!(
        page.eval("document.getElementById('webhook-name').getAttribute('aria-invalid')")
            .await,
        "true"
    );
    page.screenshot("webhooks-errors").await;

    // A real receiver, two events ticked with the mouse.
    page.type_into("#webhook-name", "Home automation").await;
    let url = format!("http://{addr}/browser");
    page.type_into("#webhook-url", &url).await;
    page.click("#event-server-online").await;
    page.click("#event-relay-opened").await;
    assert_eq!(
        page.eval("document.querySelectorAll('#webhook-events input:checked').length")
            .await,
        json!(2)
    );
    page.screenshot("webhooks-form").await;
    page.click("#webhook-submit").await;

    // The secret, once, with a working copy button.
    page.wait_for(
        "!!document.getElementById('webhook-secret')",
        "the new endpoint's secret",
    )
    .await;
    let secret = page
        .eval("document.getElementById('webhook-secret').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = page
        .eval("document.querySelector('[data-webhook-id]').dataset.webhookId")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    page.click("button[data-copy='webhook-secret']").await;
    page.wait_for(
        "document.querySelector('button[data-copy=\"webhook-secret\"]').textContent === 'Copied'",
        "the copy button to confirm",
    )
    .await;
    page.screenshot("webhook-created").await;

    // Send test: the receiver gets webhook.test and the page shows its answer.
    page.click("#send-test").await;
    page.wait_for(
        "!!document.getElementById('test-result')",
        "the test's result",
    )
    .await;
    assert!(
        page.url()
            .await
            .contains(&format!("/app/webhooks/{id}?tested=")),
        "{}",
        page.url().await
    );
    assert_eq!(page.text("#test-title").await, "Test delivered");
    assert_eq!(page.text("#test-status").await, "HTTP 200");
    assert!(page.text("#test-latency").await.ends_with(" ms"));
    assert_eq!(page.text("#test-excerpt").await, r#"{"received":true}"#);
    let got = receiver.on("browser");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body.contains(r#""type":"webhook.test""#),
        "{}",
        got[0].body
    );
    assert!(
        !page
            .eval("document.body.innerHTML")
            .await
            .as_str()
            .unwrap()
            .contains(&secret),
        "the secret is not shown again"
    );
    page.screenshot("webhook-test").await;

    // The list shows the endpoint's health; its Deliveries link opens the log.
    page.click("nav a[href='/app/webhooks']").await;
    page.wait_path("/app/webhooks").await;
    let row = format!("tr[data-webhook-id=\"{id}\"]");
    let health = page.text(&row).await;
    assert!(
        health.contains("enabled") && health.contains("HTTP 200") && health.contains(&url),
        "{health}"
    );
    assert!(
        !page
            .eval("document.body.innerHTML")
            .await
            .as_str()
            .unwrap()
            .contains(&secret)
    );
    page.screenshot("webhooks").await;
    page.click(&format!("{row} a.button")).await;
    page.wait_path(&format!("/app/webhooks/{id}")).await;
    assert_eq!(
        page.eval("document.querySelectorAll('#delivery-table tr[data-delivery-id]').length")
            .await,
        json!(1)
    );
    let log = page.text("#delivery-table").await;
    assert!(
        log.contains("webhook.test") && log.contains("delivered") && log.contains("HTTP 200"),
        "{log}"
    );

    // Redeliver: the same event again; the log shows the second attempt.
    page.click("#delivery-table button.redeliver").await;
    page.wait_path(&format!("/app/webhooks/{id}?saved=redelivered"))
        .await;
    let again = receiver.wait("browser", 2, Duration::from_secs(10)).await;
    assert_eq!(
        again[0].headers["webhook-id"],
        again[1].headers["webhook-id"]
    );
    page.goto(&format!("{base}/app/webhooks/{id}")).await;
    assert_eq!(
        page.eval("document.querySelectorAll('#delivery-table ol.attempts li').length")
            .await,
        json!(2)
    );
    page.click("#delivery-table details summary").await;
    page.screenshot("webhook-deliveries").await;

    // On a phone neither the log nor the list scrolls sideways.
    page.viewport(Some((390, 844))).await;
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "no horizontal scrolling on a phone"
    );
    page.eval("document.getElementById('deliveries').scrollIntoView(); true")
        .await;
    page.screenshot("webhook-phone").await;
    page.goto(&format!("{base}/app/webhooks")).await;
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "no horizontal scrolling on a phone"
    );
    page.screenshot("webhooks-phone").await;
    page.goto(&format!("{base}/app/webhooks/{id}")).await;
    page.viewport(None).await;

    // Delete, with the confirmation box ticked.
    page.click("#delete-confirm").await;
    page.click("#delete-webhook").await;
    page.wait_for(
        "location.pathname === '/app/webhooks' && !!document.getElementById('webhooks-notice')",
        "the deletion notice",
    )
    .await;
    assert_eq!(
        page.text("#webhooks-notice").await,
        "Home automation was deleted, with its pending deliveries."
    );
    assert!(page.text("main").await.contains("No endpoint yet"));
    drop(page);
    drop(browser);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Media requests (SPEC O, Q.5)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_requests_a_film_an_admin_approves_it_and_it_turns_available_live() {
    use common::arr::{API_KEY, FakeArr};
    let radarr = FakeArr::radarr().await;
    let hub = TestHub::start_configured(
        |args| args.arr_sync_interval = Duration::from_millis(300),
        |config| {
            config.radarr.api_key = Some(phlix_hub::config::Secret::from_bytes(API_KEY.into()));
        },
    )
    .await;
    let base = hub.url("");
    let admin = hub.register("root", "correct horse").await;
    hub.register("anna", "correct horse").await;

    let browser = Browser::launch().await;
    // Before Radarr is set up, a search says so clearly.
    let user = browser.new_isolated_page().await;
    sign_in(&user, &base, "anna", "/app/requests").await;
    user.type_into("#search-q", "dune").await;
    user.click("form.search button[type=submit]").await;
    user.wait_for(
        "!!document.getElementById('requests-error')",
        "the not-configured message",
    )
    .await;
    assert!(
        user.text("#requests-error")
            .await
            .contains("Radarr is not configured — an admin can set it in Settings")
    );
    // The admin sets Radarr up on the settings page.
    let admin_page = browser.new_isolated_page().await;
    sign_in(&admin_page, &base, "root", "/app/settings").await;
    admin_page.click("[id='server.arr.radarr.enabled']").await;
    admin_page
        .eval(&format!(
            "document.getElementById('server.arr.radarr.url').value = '{}'",
            radarr.url()
        ))
        .await;
    admin_page.click("form button[type=submit].primary").await;
    admin_page.wait_path("/app/settings?saved=1").await;

    // Search, with posters and years; request one film.
    user.goto(&format!("{base}/app/requests")).await;
    user.type_into("#search-q", "dune").await;
    user.click("form.search button[type=submit]").await;
    user.wait_for(
        "document.querySelectorAll('#search-results li.result').length === 2",
        "two search results",
    )
    .await;
    let first = user.text("#search-results li.result").await;
    assert!(
        first.contains("Dune") && first.contains("(2021)"),
        "{first}"
    );
    assert_eq!(
        user.eval("document.querySelector('#search-results img.poster').getAttribute('src')")
            .await,
        json!("https://image.tmdb.org/t/p/original/dune.jpg")
    );
    user.click("li[data-tmdb-id='438631'] button.primary").await;
    user.wait_path("/app/requests?saved=created").await;
    assert!(user.text("#my-requests").await.contains("Dune"));
    assert_eq!(
        user.eval("document.querySelector('#my-requests [data-field=request-status]').textContent")
            .await,
        json!("pending")
    );
    live(&user).await;
    user.eval("window.__sameDocument = true").await;
    user.screenshot("requests-user").await;

    // The admin approves in the queue; the user's page follows without reload.
    admin_page.goto(&format!("{base}/app/admin/requests")).await;
    assert!(admin_page.text("#request-queue").await.contains("anna"));
    admin_page.screenshot("requests-queue").await;
    admin_page.click("#request-queue button.primary").await;
    admin_page
        .wait_path("/app/admin/requests?saved=approved")
        .await;
    assert_eq!(radarr.library().len(), 1, "Radarr has the film");
    user.wait_for(
        "document.querySelector('#my-requests [data-field=request-status]').textContent === 'approved'",
        "the request to show approved live",
    )
    .await;
    radarr.set_has_file(438_631, true);
    user.wait_for(
        "document.querySelector('#my-requests [data-field=request-status]').textContent === 'available'",
        "the request to turn available after a sync, live",
    )
    .await;
    assert_eq!(
        user.eval("window.__sameDocument === true").await,
        json!(true),
        "no reload"
    );
    // A second search marks the film available.
    user.goto(&format!("{base}/app/requests?type=movie&q=dune"))
        .await;
    assert!(
        user.text("li[data-tmdb-id='438631']")
            .await
            .contains("Available"),
        "{}",
        user.text("li[data-tmdb-id='438631']").await
    );
    // Deny with a reason from the queue.
    let (status, _) = api(
        &hub,
        &admin.access_token,
        reqwest::Method::POST,
        "/api/v1/me/requests",
        Some(json!({"type": "movie", "tmdb_id": 329_865, "title": "Arrival"})),
    )
    .await;
    assert_eq!(status, 201);
    admin_page.goto(&format!("{base}/app/admin/requests")).await;
    admin_page
        .type_into("#request-queue input[name=reason]", "Not this year")
        .await;
    admin_page.click("#request-queue button.destructive").await;
    admin_page
        .wait_path("/app/admin/requests?saved=denied")
        .await;
    admin_page
        .goto(&format!("{base}/app/admin/requests?status=rejected"))
        .await;
    assert!(
        admin_page
            .text("#request-queue")
            .await
            .contains("Not this year")
    );
    drop((user, admin_page));
    drop(browser);
    hub.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Admin console (SPEC Q.5)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_disables_a_user_whose_open_page_then_goes_to_login() {
    let hub = TestHub::start_configured(
        |_| {},
        |config| config.stats_interval = Duration::from_millis(200),
    )
    .await;
    let base = hub.url("");
    hub.register("root", "correct horse").await;
    let anna = hub.register("anna", "correct horse").await;
    let _server = claimed_server(&hub, &anna.access_token, "Anna NAS").await;
    // A second sample an hour ago, so the charts have a line to draw.
    let store = hub.store().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.stats_since(0).await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no statistics sampled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let earlier = (phlix_hub::auth::now_unix() - 3600).to_string();
    common::execute(
        &store,
        "INSERT INTO hub_stats (node, minute, servers_online, relay_bytes, heartbeats) VALUES ('earlier', CAST($1 AS BIGINT), 0, 0, 0)",
        &[earlier.as_str()],
    )
    .await;

    let browser = Browser::launch().await;
    let user = browser.new_isolated_page().await;
    sign_in(&user, &base, "anna", "/app/servers").await;
    let admin = browser.new_isolated_page().await;
    sign_in(&admin, &base, "root", "/app/admin").await;
    admin
        .wait_for(
            "document.querySelectorAll('#chart-online svg.sparkline, #chart-heartbeats svg.sparkline').length === 2",
            "the dashboard charts to render",
        )
        .await;
    let label = admin
        .eval("document.querySelector('#chart-online svg').getAttribute('aria-label')")
        .await;
    assert!(
        label
            .as_str()
            .unwrap()
            .starts_with("Servers online: latest"),
        "{label}"
    );
    admin.screenshot("admin-dashboard").await;

    admin
        .click("nav.admin-nav a[href='/app/admin/users']")
        .await;
    admin.wait_path("/app/admin/users").await;
    admin.type_into("#user-q", "anna").await;
    admin.press("Enter").await;
    admin.wait_path("/app/admin/users?q=anna").await;
    admin
        .click(&format!("tr[data-user-id='{}'] a", anna.user.id))
        .await;
    admin
        .wait_path(&format!("/app/admin/users/{}", anna.user.id))
        .await;
    admin.click("#disable-user").await;
    admin
        .wait_for(
            "document.getElementById('user-state') && document.getElementById('user-state').textContent === 'disabled'",
            "the account to show disabled",
        )
        .await;
    admin.screenshot("admin-user").await;

    // Anna's open page: her next action lands on the sign-in page.
    user.click("nav a[href='/app/shares']").await;
    user.wait_for(
        "location.pathname === '/app/login'",
        "the disabled user's page to go to the sign-in page",
    )
    .await;
    user.type_into("#login", "anna").await;
    user.type_into("#password", "correct horse").await;
    user.click("button[type=submit].primary").await;
    user.wait_for(
        "document.body.innerText.includes('disabled')",
        "the sign-in form to say the account is disabled",
    )
    .await;
    drop((user, admin));
    drop(browser);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_watches_the_log_tail_live_and_pauses_it() {
    phlix_hub::telemetry::init_for_tests();
    let hub = TestHub::start().await;
    let base = hub.url("");
    hub.register("root", "correct horse").await;
    let member = hub.register("anna", "correct horse").await;
    let browser = Browser::launch().await;
    let page = browser.new_isolated_page().await;
    sign_in(&page, &base, "root", "/app/admin/logs").await;
    page.wait_for(
        "document.getElementById('log-state').dataset.state === 'open' && !document.getElementById('log-pause').hidden",
        "the log tail to connect",
    )
    .await;
    let failures = format!(
        "Array.from(document.querySelectorAll('#log-lines .log-line')).filter((li) => li.textContent.includes('sign-in failed') && li.textContent.includes('{}')).length",
        member.user.id
    );
    let before = page.eval(&failures).await.as_u64().unwrap();

    // A failed sign-in through the API is logged and shows without reload.
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "anna", "password": "not the password"}),
        )
        .await;
    assert_eq!(status, 401);
    page.wait_for(
        &format!("({failures}) === {}", before + 1),
        "the new log line",
    )
    .await;
    let line = page
        .eval(&format!(
            "Array.from(document.querySelectorAll('#log-lines .log-line')).filter((li) => li.textContent.includes('{}')).pop().textContent",
            member.user.id
        ))
        .await;
    let line = line.as_str().unwrap();
    assert!(
        line.contains("info")
            && line.contains("phlix_hub::domain::accounts")
            && line.contains("reason=\"wrong_password\""),
        "{line}"
    );
    assert!(!line.contains("not the password"));
    page.screenshot("admin-logs").await;

    // Paused: a new failure arrives but is not shown until Resume.
    page.click("#log-pause").await;
    page.wait_for(
        "document.getElementById('log-state').dataset.state === 'paused' && document.getElementById('log-pause').textContent === 'Resume'",
        "the tail to pause",
    )
    .await;
    let (status, _) = hub
        .post(
            "/api/v1/auth/login",
            &json!({"username": "anna", "password": "still not it"}),
        )
        .await;
    assert_eq!(status, 401);
    // The line reaches the browser within milliseconds; give it ample time to (not) show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        page.eval(&failures).await.as_u64().unwrap(),
        before + 1,
        "paused"
    );
    page.click("#log-pause").await;
    page.wait_for(
        &format!("({failures}) === {}", before + 2),
        "the held line after Resume",
    )
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn a_user_makes_a_personal_access_token_uses_it_and_revokes_it_in_a_real_browser() {
    let hub = TestHub::start().await;
    let base = hub.url("");
    hub.register("root", "correct horse").await;
    hub.register("anna", "correct horse").await;
    let browser = Browser::launch().await;
    let page = browser.new_isolated_page().await;
    sign_in(&page, &base, "anna", "/app/servers").await;

    page.click("nav a[href='/app/tokens']").await;
    page.wait_path("/app/tokens").await;
    assert!(page.text("#no-tokens").await.contains("no tokens"));
    // A member is not offered the admin scope; the read scopes are ticked by default.
    assert_eq!(
        page.eval("document.querySelectorAll('#scope-admin').length")
            .await,
        json!(0)
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#token-scopes input:checked').length")
            .await,
        json!(2)
    );

    // No scope ticked: the form says so and keeps the name.
    page.type_into("#token-name", "Home Assistant").await;
    page.click("#scope-servers-read").await;
    page.click("#scope-requests-read").await;
    page.click("#token-submit").await;
    page.wait_for(
        "!!document.getElementById('token-error')",
        "the form's error",
    )
    .await;
    assert_eq!(page.status().await, 400);
    assert!(
        page.text("#token-error")
            .await
            .contains("at least one scope")
    );
    assert_eq!(
        page.eval("document.getElementById('token-name').value")
            .await,
        "Home Assistant"
    );

    // servers:read for 30 days: the token is shown once, with the MCP address.
    page.click("#scope-servers-read").await;
    page.select("#token-days", "30").await;
    page.click("#token-submit").await;
    page.wait_for("!!document.getElementById('token-secret')", "the new token")
        .await;
    assert_eq!(page.status().await, 201);
    let token = page
        .eval("document.getElementById('token-secret').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64, "{token}");
    assert_eq!(page.text("#token-scopes").await, "servers:read");
    assert!(page.text("#mcp-url").await.ends_with("/mcp"));
    page.screenshot("token-created").await;

    // The token works on the API within its scope, and the list shows its use, not it.
    let (status, _) = api(
        &hub,
        &token,
        reqwest::Method::GET,
        "/api/v1/me/servers",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = api(
        &hub,
        &token,
        reqwest::Method::GET,
        "/api/v1/me/requests",
        None,
    )
    .await;
    assert_eq!(status, 403);
    page.click("#all-tokens").await;
    page.wait_path("/app/tokens").await;
    let row = page.text("#token-list tbody tr").await;
    assert!(
        row.contains("Home Assistant") && row.contains("127.0.0.1"),
        "{row}"
    );
    assert!(
        !page.text("main").await.contains(&token),
        "the list never shows the token"
    );
    page.screenshot("tokens").await;

    // Revoked on the page (the confirmation answered yes): it stops working at once.
    page.eval("window.confirm = (message) => message.includes('Home Assistant')")
        .await;
    page.click("#token-list button.revoke").await;
    page.wait_path("/app/tokens?saved=revoked").await;
    assert!(page.text("#tokens-notice").await.contains("revoked"));
    assert!(page.text("#no-tokens").await.contains("no tokens"));
    let (status, _) = api(
        &hub,
        &token,
        reqwest::Method::GET,
        "/api/v1/me/servers",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_api_docs_page_renders_the_document_in_a_real_browser() {
    let hub = TestHub::start().await;
    let base = hub.url("");
    let browser = Browser::launch().await;
    let page = browser.new_isolated_page().await;
    // A content-security-policy violation after load is recorded by the page itself (the
    // operations below render only if the CSP let the embedded scripts run).
    page.goto(&format!("{base}/api/docs/")).await;
    page.eval(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
    )
    .await;
    // Swagger UI (embedded in the binary, nothing from elsewhere) fetches /api/openapi.json
    // and lists every operation.
    page.wait_for(
        "document.querySelectorAll('.opblock').length > 50",
        "Swagger UI to list the operations",
    )
    .await;
    let title = page.text(".info .title").await;
    assert!(title.contains("phlix-hub API"), "{title}");
    let operations = page
        .eval("Array.from(document.querySelectorAll('.opblock-summary-path')).map((e) => e.textContent).join(' ')")
        .await;
    let operations = operations.as_str().unwrap();
    for path in ["/api/v1/me/mcp-tokens", "/api/v1/me/servers", "/mcp"] {
        assert!(operations.contains(path), "{path} missing");
    }
    assert_eq!(page.eval("window.__csp.length").await, json!(0));
    page.screenshot("api-docs").await;
}
