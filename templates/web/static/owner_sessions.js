// Owner: the Active Sessions table and the slot monitoring dashboard, kept live from the
// socket's `kilowatt:event`s (see app.js). Both pages work without this script.
"use strict";

(() => {
  // Marks on the page which of its topics the socket confirmed (data-subscribed, a count) or
  // refused (data-refused), so people and tests can tell the page is really live.
  const trackSubscriptions = (page) => {
    const wanted = (page.dataset.topics || "").split(/\s+/).filter(Boolean);
    const subscribed = new Set();
    const refused = new Set();
    document.addEventListener("kilowatt:event", (event) => {
      const { type, topic } = event.detail || {};
      if (!wanted.includes(topic)) return;
      if (type === "subscribed") {
        subscribed.add(topic);
        page.dataset.subscribed = String(subscribed.size);
      } else if (type === "error") {
        refused.add(topic);
        page.dataset.refused = Array.from(refused).join(" ");
      }
    });
  };

  (() => {
    const page = document.getElementById("owner-sessions");
    if (!page) return;
    const rupees = (value) => Number(value).toLocaleString("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    const setText = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
    const rowOf = (sessionId) => document.getElementById("session-" + sessionId);
    const liveRows = () => Array.from(page.querySelectorAll("tr[data-session-id]"));

    // The counters at the top follow the rows on the page.
    const totals = () => {
      const rows = liveRows();
      const cost = rows.reduce((sum, row) => sum + Number(row.dataset.cost || 0), 0);
      const energy = rows.reduce((sum, row) => sum + Number(row.dataset.energyWh || 0), 0);
      setText("active-count", String(rows.length));
      setText("running-revenue", rupees(cost));
      setText("total-energy", (energy / 1000).toFixed(3));
      const empty = rows.length === 0;
      const none = document.getElementById("no-sessions");
      const wrap = document.getElementById("sessions-wrap");
      if (none) none.hidden = !empty;
      if (wrap) wrap.hidden = empty;
    };

    const say = (text) => {
      const el = document.getElementById("live-notice");
      if (!el) return;
      el.textContent = text;
      el.hidden = false;
    };

    let reloading = null;
    const reloadSoon = () => {
      if (reloading) return;
      reloading = setTimeout(() => window.location.assign("/owner/sessions"), 300);
    };

    const settled = (data) => {
      const row = rowOf(data.sessionId);
      if (!row) return;
      row.remove();
      totals();
      const kwh = (Number(data.energyWh || 0) / 1000).toFixed(3);
      say("Session #" + data.sessionId + " has ended and settled: " + kwh + " kWh, ₹" + rupees(data.cost || 0) + " billed.");
    };

    const handlers = {
      sessionUpdate(data) {
        const row = rowOf(data.sessionId);
        if (!row) return;
        row.dataset.energyWh = String(data.energyWh);
        row.dataset.cost = String(data.cost);
        setText("energy-" + data.sessionId, (data.energyWh / 1000).toFixed(3));
        if (data.powerW !== null && data.powerW !== undefined) setText("power-" + data.sessionId, (data.powerW / 1000).toFixed(1));
        setText("cost-" + data.sessionId, rupees(data.cost));
        totals();
      },
      sessionSettled: settled,
      transactionStopped: settled,
      // A new session at one of the chargers, or a pending one that has begun: a fresh table.
      transactionStarted(data) {
        const row = rowOf(data.sessionId);
        if (!row || row.dataset.status === "pending") reloadSoon();
      },
      sessionStarted(data) {
        const row = rowOf(data.sessionId);
        if (row && row.dataset.status === "pending") reloadSoon();
      },
    };
    trackSubscriptions(page);
    document.addEventListener("kilowatt:event", (event) => {
      const { type, data } = event.detail || {};
      if (data && handlers[type]) handlers[type](data);
    });

    // Durations tick locally between meter reports.
    const pad = (n) => String(n).padStart(2, "0");
    setInterval(() => {
      page.querySelectorAll(".s-duration[data-ticking]").forEach((el) => {
        const seconds = Number(el.dataset.seconds || 0) + 1;
        el.dataset.seconds = String(seconds);
        el.textContent = Math.floor(seconds / 3600) + ":" + pad(Math.floor(seconds / 60) % 60) + ":" + pad(seconds % 60);
      });
    }, 1000);

    // More chargers than one socket may follow: refresh now and then instead.
    const refresh = Number(page.dataset.refresh || 0);
    if (refresh > 0) setInterval(reloadSoon, refresh * 1000);
  })();

  (() => {
    const page = document.getElementById("slot-monitoring");
    if (!page) return;
    trackSubscriptions(page);
    const pad = (n) => String(n).padStart(2, "0");

    // Grace periods count down locally; the server expires the booking when one ends.
    setInterval(() => {
      page.querySelectorAll(".countdown[data-seconds]").forEach((el) => {
        const seconds = Math.max(0, Number(el.dataset.seconds || 0) - 1);
        el.dataset.seconds = String(seconds);
        el.textContent = Math.floor(seconds / 60) + ":" + pad(seconds % 60);
        if (seconds === 0) el.classList.add("over");
      });
    }, 1000);

    let reloading = null;
    const reloadSoon = () => {
      if (reloading) return;
      reloading = setTimeout(() => window.location.reload(), 500);
    };
    document.addEventListener("kilowatt:event", (event) => {
      const { type, data } = event.detail || {};
      if (!data) return;
      if (type === "bookingUpdated") reloadSoon();
      if (type === "connectorStatus") {
        page.querySelectorAll(".connector-slots").forEach((item) => {
          if (item.dataset.charger !== data.chargePointId || item.dataset.connector !== String(data.connectorId)) return;
          const badge = item.querySelector(".connector-status");
          if (badge) { badge.textContent = data.status; badge.className = "status status-" + data.status + " connector-status"; }
        });
      }
    });
  })();
})();
