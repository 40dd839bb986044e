// Phlix Hub pages: live server state, shares, media requests and the log tail over server-sent events, relative times, copy
// buttons and confirmations. Everything works without this script; it only makes pages live.
"use strict";

(function () {
  const rtf = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;

  function relative(iso) {
    const then = Date.parse(iso);
    if (Number.isNaN(then)) return null;
    const seconds = Math.round((then - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    if (!rtf) return null;
    if (abs < 60) return rtf.format(seconds, "second");
    if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
    return rtf.format(Math.round(seconds / 86400), "day");
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-field='last-seen']").forEach((el) => {
      const iso = el.getAttribute("datetime");
      if (!iso) return;
      const text = relative(iso);
      if (text) {
        el.textContent = text;
        el.title = new Date(iso).toLocaleString();
      }
    });
  }

  function flash(el) {
    el.classList.remove("flash");
    void el.offsetWidth;
    el.classList.add("flash");
  }

  function setField(root, name, apply) {
    root.querySelectorAll("[data-field='" + name + "']").forEach((el) => { apply(el); flash(el); });
  }

  function rowsOf(serverId) {
    return Array.from(document.querySelectorAll("[data-server-id]"))
      .filter((el) => el.getAttribute("data-server-id") === serverId);
  }

  let refreshing = false;
  // A server this page does not show yet (a new claim): fetch the page again and swap <main>.
  async function refreshMain() {
    if (refreshing) return;
    refreshing = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("main");
      const main = document.getElementById("main");
      if (fresh && main) {
        main.innerHTML = fresh.innerHTML;
        prepare(main);
        refreshTimes();
      }
    } finally {
      refreshing = false;
    }
  }

  // Fetches the page again and swaps only the elements with these ids, so the rest of the page
  // (a form being filled in) stays as it is. Requests made during a fetch are merged into one
  // more fetch.
  const wantedSections = new Set();
  let sectionsRunning = false;
  async function refreshSections(ids) {
    ids.forEach((id) => wantedSections.add(id));
    if (sectionsRunning) return;
    sectionsRunning = true;
    try {
      while (wantedSections.size > 0) {
        const wanted = Array.from(wantedSections);
        wantedSections.clear();
        const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) return;
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        wanted.forEach((id) => {
          const fresh = doc.getElementById(id);
          const current = document.getElementById(id);
          if (fresh && current) {
            const node = document.importNode(fresh, true);
            current.replaceWith(node);
            prepare(node);
          }
        });
        refreshTimes();
      }
    } catch (e) {
      /* offline: the next event tries again */
    } finally {
      sectionsRunning = false;
    }
  }

  function onStatus(data) {
    const rows = rowsOf(data.serverId);
    if (rows.length === 0) { if (document.getElementById("server-table") || document.querySelector(".empty")) refreshMain(); return; }
    rows.forEach((row) => {
      setField(row, "status", (el) => { el.textContent = data.status; el.setAttribute("data-status", data.status); });
      if (data.lastSeenAt) {
        setField(row, "last-seen", (el) => { el.setAttribute("datetime", new Date(data.lastSeenAt * 1000).toISOString()); });
      }
    });
    refreshTimes();
  }

  function onHeartbeat(data) {
    const rows = rowsOf(data.serverId);
    if (rows.length === 0) return;
    rows.forEach((row) => {
      setField(row, "last-seen", (el) => { el.setAttribute("datetime", new Date(data.lastSeenAt * 1000).toISOString()); });
      if (data.version) setField(row, "version", (el) => { el.textContent = data.version; });
      if (typeof data.libraryCount === "number") {
        row.querySelectorAll("[data-field='libraries']").forEach((el) => { el.textContent = String(data.libraryCount); });
      }
    });
    refreshTimes();
    // The detail page redraws its charts and history from the server (not its forms).
    if (document.getElementById("live-region") && data.hostMetrics) refreshSections(["live-region", "history"]);
  }

  function onRelay(data) {
    const rows = rowsOf(data.serverId);
    rows.forEach((row) => {
      setField(row, "relay", (el) => {
        el.textContent = data.relayActive ? "active" : "idle";
        el.setAttribute("data-active", data.relayActive ? "1" : "0");
      });
    });
    // A server shared with the viewer: its "Open through the hub" link follows the tunnel.
    if (rows.some((row) => row.hasAttribute("data-share-id"))) refreshSections(shareSections(data.serverId));
  }

  // The lists of shares and invite links this page shows for `serverId` (all of them when a
  // list is not about one server).
  function shareSections(serverId) {
    return Array.from(document.querySelectorAll("[data-live-section]"))
      .filter((el) => !el.hasAttribute("data-section-server") || el.getAttribute("data-section-server") === serverId)
      .map((el) => el.id)
      .filter(Boolean);
  }

  // A revoked share (or one its collaborator left) disappears from every list at once; a list
  // left empty is drawn again by the hub, with its empty-state text.
  function onShareRevoked(data) {
    const emptied = [];
    document.querySelectorAll("[data-share-id]").forEach((row) => {
      if (row.getAttribute("data-share-id") !== data.shareId) return;
      const section = row.closest("[data-live-section]");
      row.remove();
      if (section && section.id && !section.querySelector("[data-share-id]")) emptied.push(section.id);
    });
    if (emptied.length > 0) refreshSections(emptied);
  }

  // A new or changed share or invite link: the lists are drawn again.
  function onSharesChanged(data) {
    const ids = shareSections(data.serverId);
    if (ids.length > 0) refreshSections(ids);
  }

  // A media request changed: redraw the request lists this page shows.
  function onRequest() {
    const ids = Array.from(document.querySelectorAll("[data-requests]")).map((el) => el.id).filter(Boolean);
    if (ids.length > 0) refreshSections(ids);
  }

  function live() {
    if (!document.body.hasAttribute("data-live") || typeof EventSource === "undefined") return;
    const state = document.getElementById("live-state");
    const show = (s, text) => { if (state) { state.setAttribute("data-state", s); state.textContent = text; } };
    const handle = (fn) => (event) => { try { fn(JSON.parse(event.data)); } catch (e) { /* ignore a malformed event */ } };
    let renewals = 0;
    let source = null;
    function connect() {
      source = new EventSource("/api/v1/me/events");
      source.addEventListener("open", () => { renewals = 0; show("open", "Live"); });
      source.addEventListener("error", async () => {
        if (source.readyState !== EventSource.CLOSED) { show("connecting", "Reconnecting…"); return; }
        // Refused (the access cookie expired): loading a page renews the session from the
        // refresh cookie, then the stream can reopen. Give up after a few tries.
        if (renewals >= 3) { show("closed", "Live updates stopped — reload the page"); return; }
        renewals += 1;
        show("connecting", "Reconnecting…");
        try { await fetch("/app/servers", { credentials: "same-origin", redirect: "manual" }); } catch (e) { /* offline */ }
        setTimeout(connect, 1000 * renewals);
      });
      source.addEventListener("server.online", handle(onStatus));
      source.addEventListener("server.offline", handle(onStatus));
      source.addEventListener("server.heartbeat", handle(onHeartbeat));
      source.addEventListener("relay.opened", handle(onRelay));
      source.addEventListener("relay.closed", handle(onRelay));
      source.addEventListener("share.revoked", handle(onShareRevoked));
      ["share.created", "share.updated", "invite.created", "invite.redeemed"].forEach((name) => {
        source.addEventListener(name, handle(onSharesChanged));
      });
      ["request.created", "request.approved", "request.denied", "request.available"].forEach((name) => {
        source.addEventListener(name, handle(onRequest));
      });
    }
    connect();
    window.addEventListener("pagehide", () => { if (source) source.close(); });
  }

  // Copy buttons only work with this script, so they are hidden until it runs.
  function prepare(root) {
    root.querySelectorAll("button[data-copy][hidden]").forEach((button) => { button.hidden = false; });
  }

  function copyButtons() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-copy]");
      if (!button) return;
      const input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) return;
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (e) {
        input.select();
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }

  function confirmations() {
    document.addEventListener("submit", (event) => {
      const message = event.target.getAttribute("data-confirm");
      if (message && !window.confirm(message)) event.preventDefault();
    });
  }

  // The logs page (/app/admin/logs): follow the live tail, append new lines, Pause/Resume.
  // While paused, new lines wait in a buffer and are appended on Resume.
  const LOG_LINES_KEPT = 2000;
  function logTail() {
    const list = document.getElementById("log-lines");
    if (!list || !list.hasAttribute("data-log-tail") || typeof EventSource === "undefined") return;
    const url = list.getAttribute("data-log-tail");
    const scroller = document.getElementById("log-scroll");
    const state = document.getElementById("log-state");
    const button = document.getElementById("log-pause");
    const show = (s, text) => { if (state) { state.setAttribute("data-state", s); state.textContent = text; } };
    let paused = false;
    let waiting = [];
    function lineOf(record) {
      const li = document.createElement("li");
      li.className = "log-line";
      li.setAttribute("data-level", record.level || "");
      const part = (tag, cls, text) => {
        const el = document.createElement(tag);
        if (cls) el.className = cls;
        el.textContent = text;
        li.appendChild(el);
        li.appendChild(document.createTextNode(" "));
        return el;
      };
      part("time", "", record.ts || "").setAttribute("datetime", record.ts || "");
      part("span", "log-level", record.level || "");
      part("span", "log-target", record.target || "");
      part("span", "log-message", record.message || "");
      const fields = Object.entries(record.fields || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(" ");
      if (fields) part("span", "log-fields", fields);
      return li;
    }
    function append(records) {
      if (records.length === 0) return;
      const atBottom = !scroller || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
      const empty = document.getElementById("log-empty");
      if (empty) empty.remove();
      records.forEach((record) => list.appendChild(lineOf(record)));
      while (list.children.length > LOG_LINES_KEPT) list.removeChild(list.firstElementChild);
      if (atBottom && scroller) scroller.scrollTop = scroller.scrollHeight;
    }
    if (button) {
      button.hidden = false;
      button.addEventListener("click", () => {
        paused = !paused;
        button.textContent = paused ? "Resume" : "Pause";
        button.setAttribute("aria-pressed", paused ? "true" : "false");
        if (paused) {
          show("paused", "Paused");
        } else {
          append(waiting);
          waiting = [];
          show("open", "Live");
        }
      });
    }
    let renewals = 0;
    let source = null;
    function connect() {
      source = new EventSource(url);
      source.addEventListener("open", () => { renewals = 0; if (!paused) show("open", "Live"); });
      source.addEventListener("log", (event) => {
        let record;
        try { record = JSON.parse(event.data); } catch (e) { return; }
        if (paused) {
          waiting.push(record);
          if (waiting.length > LOG_LINES_KEPT) waiting.shift();
        } else {
          append([record]);
        }
      });
      source.addEventListener("error", async () => {
        if (source.readyState !== EventSource.CLOSED) { show("connecting", "Reconnecting…"); return; }
        if (renewals >= 3) { show("closed", "Live tail stopped — reload the page"); return; }
        renewals += 1;
        show("connecting", "Reconnecting…");
        try { await fetch("/app/admin/logs", { credentials: "same-origin", redirect: "manual" }); } catch (e) { /* offline */ }
        setTimeout(connect, 1000 * renewals);
      });
    }
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
    show("connecting", "Connecting…");
    connect();
    window.addEventListener("pagehide", () => { if (source) source.close(); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    prepare(document);
    refreshTimes();
    setInterval(refreshTimes, 10000);
    live();
    logTail();
    copyButtons();
    confirmations();
  });
})();
