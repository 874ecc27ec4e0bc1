// Kilowatt web UI: progressive enhancement only; every page works without it.
"use strict";

// Forms with data-confirm ask before they submit (Stop, Cancel, …).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Live pages (data-live): one socket to /ws, subscribed to the page's topics (data-charger,
// data-session and any in data-topics, space-separated); it reconnects by itself with a growing
// delay and resubscribes. Every pushed event is also dispatched on `document` as a
// `kilowatt:event` CustomEvent (detail: {topic, type, data}) so each area's script can react,
// and `window.kilowatt.command({type: "start"|"stop", …})` sends a socket command and resolves
// with the server's result ({ok, data} or {ok: false, error: {code, message}}).
(() => {
  const page = document.querySelector("[data-live]");
  if (!page || !("WebSocket" in window)) return;
  const topics = [];
  if (page.dataset.charger) topics.push("charger:" + page.dataset.charger);
  if (page.dataset.session) topics.push("session:" + page.dataset.session);
  (page.dataset.topics || "").split(/\s+/).filter(Boolean).forEach((t) => topics.push(t));
  const state = document.getElementById("live-state");
  const setText = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  const setStatus = (el, status) => { if (!el) return; el.textContent = status; el.className = "status status-" + status; };
  const rupees = (value) => Number(value).toLocaleString("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  // The charger page's own reactions; other pages listen to `kilowatt:event`.
  const onChargerPage = page.classList.contains("charger-page");
  const handlers = {
    connectorStatus(data) {
      const el = document.getElementById("connector-" + data.connectorId + "-status");
      if (el) setStatus(el, data.status);
      // Start buttons depend on more than the status (balance, holds): a fresh page decides.
      const startable = document.getElementById("start-" + data.connectorId);
      if (startable && data.status !== "Available") startable.disabled = true;
    },
    chargerOnline() { const el = document.getElementById("online"); setStatus(el, "Available"); setText("online", "Online"); },
    chargerOffline() { const el = document.getElementById("online"); setStatus(el, "offline"); setText("online", "Offline"); },
    sessionUpdate(data) {
      setText("energy", (data.energyWh / 1000).toFixed(3));
      if (data.powerW !== null && data.powerW !== undefined) setText("power", (data.powerW / 1000).toFixed(1));
      if (data.socPercent !== null && data.socPercent !== undefined) setText("soc", data.socPercent + "%");
      setText("cost", rupees(data.cost));
    },
    sessionStarted() { if (onChargerPage) window.location.reload(); },
    transactionStarted() { if (onChargerPage && !page.dataset.session) window.location.reload(); },
    sessionSettled() { if (onChargerPage) window.location.reload(); },
  };

  // The duration ticks locally between meter updates.
  const duration = document.getElementById("duration");
  if (duration) {
    let seconds = Number(duration.dataset.seconds || 0);
    const pad = (n) => String(n).padStart(2, "0");
    setInterval(() => {
      seconds += 1;
      duration.textContent = Math.floor(seconds / 3600) + ":" + pad(Math.floor(seconds / 60) % 60) + ":" + pad(seconds % 60);
    }, 1000);
  }

  let socket = null;
  let nextId = 1;
  const pending = new Map();
  window.kilowatt = {
    rupees,
    command(message) {
      return new Promise((resolve) => {
        if (!socket || socket.readyState !== WebSocket.OPEN) {
          resolve({ ok: false, error: { code: "offline", message: "Not connected; try again in a moment." } });
          return;
        }
        const id = String(nextId++);
        pending.set(id, resolve);
        socket.send(JSON.stringify(Object.assign({}, message, { id, csrf: page.dataset.csrf })));
      });
    },
  };

  let delay = 500;
  const connect = () => {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws?csrf=" + encodeURIComponent(page.dataset.csrf));
    socket.addEventListener("open", () => {
      delay = 500;
      if (state) state.textContent = "Live";
      topics.forEach((topic) => socket.send(JSON.stringify({ type: "subscribe", topic })));
    });
    socket.addEventListener("message", (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      if (event.type === "result" && pending.has(event.id)) {
        pending.get(event.id)(event);
        pending.delete(event.id);
        return;
      }
      const handle = handlers[event.type];
      if (handle && event.data) handle(event.data);
      document.dispatchEvent(new CustomEvent("kilowatt:event", { detail: event }));
    });
    socket.addEventListener("close", () => {
      if (state) state.textContent = "Reconnecting…";
      pending.forEach((resolve) => resolve({ ok: false, error: { code: "disconnected", message: "The connection dropped; check the page and try again." } }));
      pending.clear();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  };
  connect();
})();
