// Owner pages (dashboard, station, charger): live online badges, connector statuses and the
// charger's status history, from the `kilowatt:event`s app.js dispatches for the page's
// `data-topics` (one `charger:{id}` per charger shown).
(() => {
  "use strict";
  const page = document.querySelector("[data-owner-live]");
  if (!page) return;
  const wanted = new Set((page.dataset.topics || "").split(/\s+/).filter(Boolean));
  const subscribed = new Set();
  const live = document.getElementById("owner-live");
  // Charge point IDs may hold characters CSS selectors would need escaped: compare attributes.
  const all = (selector, attribute, value) =>
    Array.from(document.querySelectorAll(selector)).filter((el) => el.getAttribute(attribute) === value);
  const setBadge = (el, status, text) => { el.textContent = text; el.className = "status status-" + status; };

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  const when = (at) => {
    const date = at ? new Date(at) : new Date();
    return isNaN(date) ? String(at) : date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  };

  const recount = () => {
    const online = document.getElementById("chargers-online");
    if (online) online.textContent = String(document.querySelectorAll('[data-online-for][data-online="true"]').length);
  };

  const setOnline = (chargePointId, online) => {
    all("[data-online-for]", "data-online-for", chargePointId).forEach((el) => {
      setBadge(el, online ? "Available" : "offline", online ? "Online" : "Offline");
      el.dataset.online = String(online);
    });
    all("[data-seen-for]", "data-seen-for", chargePointId).forEach((el) => {
      el.textContent = online ? "Connected" : "Last seen " + when(null);
    });
    recount();
  };

  const connectorStatus = (chargePointId, data) => {
    const number = String(data.connectorId);
    all("[data-connector]", "data-cp", chargePointId)
      .filter((el) => el.dataset.connector === number)
      .forEach((el) => setBadge(el, data.status, data.status));
    // The charger page's history, when it shows the newest reports, gains the new one on top.
    const rows = document.getElementById("status-history-rows");
    if (rows && rows.dataset.cp === chargePointId && rows.dataset.first === "true") {
      const row = document.createElement("tr");
      const badge = document.createElement("span");
      setBadge(badge, data.status, data.status);
      const status = document.createElement("td");
      status.appendChild(badge);
      row.append(cell(when(null)), cell(number), status, cell(data.errorCode || ""), cell(data.info || ""), cell(when(data.at)));
      rows.prepend(row);
      const empty = document.getElementById("no-history");
      if (empty) empty.remove();
    }
  };

  document.addEventListener("kilowatt:event", (event) => {
    const { topic, type, data } = event.detail || {};
    if (type === "subscribed" && wanted.has(topic)) {
      subscribed.add(topic);
      if (live && subscribed.size === wanted.size) live.textContent = "Live";
      return;
    }
    if (typeof topic !== "string" || !topic.startsWith("charger:") || !data) return;
    const chargePointId = topic.slice("charger:".length);
    if (type === "chargerOnline") setOnline(chargePointId, true);
    else if (type === "chargerOffline") setOnline(chargePointId, false);
    else if (type === "connectorStatus") connectorStatus(chargePointId, data);
  });
})();
