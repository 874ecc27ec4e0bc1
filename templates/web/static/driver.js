// Driver pages: the history page's open sessions update live (energy and cost from
// sessionUpdate events); when one settles the page reloads to show its final row and totals.
(() => {
  "use strict";
  const history = document.querySelector(".history-page[data-live]");
  if (!history) return;
  const rupees = (value) => Number(value).toLocaleString("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  document.addEventListener("kilowatt:event", (event) => {
    const { type, data } = event.detail || {};
    if (!data || data.sessionId === undefined) return;
    const row = document.querySelector('[data-session-row="' + data.sessionId + '"]');
    if (!row) return;
    if (type === "sessionUpdate") {
      const energy = row.querySelector(".energy");
      const cost = row.querySelector(".cost");
      if (energy) energy.textContent = (data.energyWh / 1000).toFixed(3);
      if (cost) cost.textContent = rupees(data.cost);
    } else if (type === "sessionSettled" || type === "sessionStarted") {
      window.location.reload();
    }
  });
})();
