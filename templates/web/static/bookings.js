// Bookings, the queue, and the charger page's busy connectors: local times, ticking
// countdowns, live refreshes of the page's list when the server says something changed, the
// queue page taking the driver to the charger when their turn comes, and the booking form's
// time zone. Every page works without this: it only enhances.
(() => {
  // <time data-local="datetime|time" datetime="…Z">: the server writes UTC; show local time.
  const localize = (root) => {
    root.querySelectorAll("time[data-local]").forEach((el) => {
      const at = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(at.getTime())) return;
      const options = el.dataset.local === "time"
        ? { hour: "2-digit", minute: "2-digit" }
        : { weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" };
      el.title = el.getAttribute("datetime");
      el.textContent = at.toLocaleString([], options);
    });
  };
  localize(document);

  // Fetches this page again and swaps in its `id` element when its `signature` changed (so a
  // refresh never replaces what the driver is about to click for nothing). Debounced.
  const refresher = (id, signature, after) => {
    let timer = null;
    return (force) => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        let text;
        try {
          const response = await fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
          if (!response.ok) return;
          text = await response.text();
        } catch (_) {
          return;
        }
        const fresh = new DOMParser().parseFromString(text, "text/html").getElementById(id);
        const current = document.getElementById(id);
        if (!fresh || !current) return;
        if (!force && signature(fresh) === signature(current)) return;
        current.replaceWith(fresh);
        localize(fresh);
        after(fresh);
      }, 150);
    };
  };

  const pad = (n) => String(n).padStart(2, "0");
  const countdownText = (seconds) => {
    const s = Math.max(0, seconds);
    return s >= 3600
      ? Math.floor(s / 3600) + ":" + pad(Math.floor(s / 60) % 60) + ":" + pad(s % 60)
      : pad(Math.floor(s / 60)) + ":" + pad(s % 60);
  };

  // The queue page: positions follow the charger's events; the driver's turn takes them to the charger.
  const queuePage = document.getElementById("queue-page");
  if (queuePage) {
    const heldAt = (root) => {
      const held = root.querySelector("[data-held-charger]");
      return held ? held.dataset.heldCharger : null;
    };
    const goCharge = (chargePointId) => window.location.assign("/chargers/" + encodeURIComponent(chargePointId));
    let held = heldAt(document);
    const text = (root, css) => { const el = root.querySelector(css); return el ? el.textContent : ""; };
    const signature = (root) => Array.from(root.querySelectorAll(".queue-entry"))
      .map((entry) => [entry.dataset.queueStatus, text(entry, "#queue-position"), text(entry, "#queue-length")].join("/"))
      .join("|") || "empty";
    const refresh = refresher("queue-list", signature, (fresh) => {
      const now = heldAt(fresh);
      // The turn came while the socket was away (or before it subscribed): go now.
      if (now && !held) goCharge(now);
      held = now;
    });
    document.addEventListener("kilowatt:event", (event) => {
      const { type, topic, data } = event.detail || {};
      if (type === "queueTurn" && data && data.chargePointId) {
        goCharge(data.chargePointId);
      } else if (type === "subscribed" && topic === queuePage.dataset.userTopic) {
        refresh(false);
      } else if (["queueAdvanced", "transactionStarted", "transactionStopped", "sessionSettled", "connectorStatus"].includes(type)) {
        refresh(false);
      }
    });
  }

  // The bookings page: countdowns tick from the server's seconds left; changes pushed on the
  // driver's topic (slot start, check-in, expiry, cancel) refresh the list.
  const bookingsPage = document.getElementById("bookings-page");
  if (bookingsPage) {
    let ticking = [];
    let refresh = () => {};
    const arm = (root) => {
      ticking.forEach(clearInterval);
      ticking = [];
      root.querySelectorAll(".booking-countdown[data-remaining]").forEach((el) => {
        const ends = Date.now() + Number(el.dataset.remaining) * 1000;
        // Already at zero when shown: the server has been asked; wait for its push.
        let done = Number(el.dataset.remaining) <= 0;
        const tick = () => {
          const left = Math.round((ends - Date.now()) / 1000);
          el.textContent = countdownText(left);
          // At zero the server moves the booking on; ask it, in case the push went missing.
          if (left <= 0 && !done) { done = true; setTimeout(() => refresh(true), 1500); }
        };
        tick();
        ticking.push(setInterval(tick, 1000));
      });
      root.querySelectorAll("form.cancel-booking[data-refund-seconds]").forEach((form) => {
        const seconds = Number(form.dataset.refundSeconds);
        if (!(seconds > 0)) return;
        setTimeout(() => {
          form.setAttribute("data-confirm", form.dataset.confirmLate);
          const note = document.getElementById(form.dataset.note);
          if (note) note.textContent = form.dataset.lateNote;
        }, Math.min(seconds * 1000, 2147483647));
      });
    };
    const signature = (root) => Array.from(root.querySelectorAll(".booking"))
      .map((b) => b.id + "=" + b.dataset.status).join("|") + "|" + ((root.querySelector("#balance") || {}).textContent || "");
    refresh = refresher("bookings-list", signature, arm);
    arm(document);
    document.addEventListener("kilowatt:event", (event) => {
      const { type, topic } = event.detail || {};
      if (type === "bookingUpdated" || (type === "subscribed" && topic === bookingsPage.dataset.userTopic)) refresh(false);
    });
  }

  // The booking form: the browser's UTC offset for the chosen day, so the slot is the local time typed.
  const bookingForm = document.getElementById("booking-form");
  if (bookingForm) {
    const date = document.getElementById("date");
    const time = document.getElementById("time");
    const tz = document.getElementById("tz");
    const note = document.getElementById("tz-note");
    const offsetAt = (day, clock) => {
      const at = day && clock ? new Date(day + "T" + clock) : new Date();
      return -(Number.isNaN(at.getTime()) ? new Date() : at).getTimezoneOffset();
    };
    const describe = (minutes) => {
      const sign = minutes < 0 ? "−" : "+";
      const m = Math.abs(minutes);
      return "UTC" + sign + pad(Math.floor(m / 60)) + ":" + pad(m % 60);
    };
    const update = () => {
      const minutes = offsetAt(date.value, time.value);
      tz.value = String(minutes);
      if (note) note.textContent = "Times are in your local time (" + describe(minutes) + ").";
    };
    if (!date.value) {
      const soon = new Date(Date.now() + 60 * 60 * 1000);
      soon.setMinutes(0, 0, 0);
      date.value = soon.getFullYear() + "-" + pad(soon.getMonth() + 1) + "-" + pad(soon.getDate());
      if (!time.value) time.value = pad(soon.getHours()) + ":00";
    }
    update();
    date.addEventListener("change", update);
    time.addEventListener("change", update);
    bookingForm.addEventListener("submit", update);
  }

  // The charger page: a busy connector that frees up, or a hold or booking that changes here,
  // shows a fresh page (Start, "held for you"); the server decides what the driver may do.
  const chargerPage = document.querySelector(".charger-page[data-charger]");
  if (chargerPage) {
    let reloading = null;
    const reload = () => { if (!reloading) reloading = setTimeout(() => window.location.reload(), 300); };
    const here = chargerPage.dataset.charger;
    document.addEventListener("kilowatt:event", (event) => {
      const { type, data } = event.detail || {};
      if (!data) return;
      if ((type === "queueTurn" || type === "bookingUpdated") && data.chargePointId === here) {
        reload();
      } else if (type === "queueAdvanced" && chargerPage.querySelector("li[data-busy], #queue-position")) {
        reload();
      } else if (type === "connectorStatus" && data.status === "Available") {
        const connector = chargerPage.querySelector('li[data-connector="' + data.connectorId + '"]');
        if (connector && connector.hasAttribute("data-busy")) reload();
      }
    });
  }
})();
