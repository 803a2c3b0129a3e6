// Ripples dashboard page for the local stack: the Stripe card, revenue, a visitor's timeline.
// Plain JavaScript, no build step. It speaks only the HTTP contract (shared/design/api.md) with a
// dashboard bearer token that the local stack issues at /_local/token.
"use strict";

(() => {
  const params = new URLSearchParams(window.location.search);
  const PROJECT = params.get("project") || "demo";
  const POLL_MS = 1500;

  // Stripe's currency exponents: zero-decimal and three-decimal currencies (all others: 2).
  const ZERO_DECIMAL = new Set([
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
  ]);
  const THREE_DECIMAL = new Set(["bhd", "jod", "kwd", "omr", "tnd"]);
  const PHASES = { checkout_sessions: "Checkout Sessions", charges: "Charges", subscriptions: "Subscriptions" };
  const TIERS = [
    { key: "1", label: "Tier 1 · checkout metadata", css: "t1" },
    { key: "2", label: "Tier 2 · email match", css: "t2" },
    { key: "3", label: "Tier 3 · remembered customer", css: "t3" },
  ];

  const $ = (id) => document.getElementById(id);

  // ---- Formatting -------------------------------------------------------------------------------
  function decimalsOf(currency) {
    const code = String(currency).toLowerCase();
    if (ZERO_DECIMAL.has(code)) return 0;
    if (THREE_DECIMAL.has(code)) return 3;
    return 2;
  }

  /** An amount in the currency's minor unit, for people: 2500 usd -> "$25.00", 1500 jpy -> "¥1,500". */
  function formatMoney(minor, currency, options = {}) {
    const digits = decimalsOf(currency);
    const value = Number(minor) / 10 ** digits;
    try {
      return new Intl.NumberFormat(undefined, {
        style: "currency",
        currency: String(currency).toUpperCase(),
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
        ...options,
      }).format(value);
    } catch {
      return `${value.toFixed(digits)} ${String(currency).toUpperCase()}`;
    }
  }

  const numberFormat = new Intl.NumberFormat();
  const percentFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function formatDate(iso, withTime = false) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return (withTime ? dateTimeFormat : dateFormat).format(date);
  }

  function timeElement(iso, withTime = false) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.textContent = formatDate(iso, withTime);
    return element;
  }

  /** A map {"usd": 2500, "jpy": 300} as "$25.00 · ¥300", currencies in a stable order. */
  function formatTotals(map) {
    const entries = Object.entries(map || {}).filter(([, amount]) => amount !== 0);
    if (!entries.length) return "";
    return entries
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([cur, amount]) => formatMoney(amount, cur))
      .join(" · ");
  }

  function el(tag, attributes = {}, ...children) {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") element.className = value;
      else if (name === "style")
        Object.assign(element.style, value); // CSSOM: allowed by the page's CSP
      else element.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  function showError(element, error) {
    element.replaceChildren();
    if (!error) {
      show(element, false);
      return;
    }
    element.append(error.message || String(error));
    show(element, true);
  }

  // ---- The API ----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || (body && body.message) || `The request failed (HTTP ${status}).`);
      this.status = status;
      this.code = error.code || null;
      this.missing = Array.isArray(error.missing) ? error.missing : [];
    }
  }

  let token = null;

  async function fetchToken() {
    const response = await fetch(`/_local/token?project=${encodeURIComponent(PROJECT)}`);
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body.token;
  }

  async function api(method, path, body, retried = false) {
    if (!token) token = await fetchToken();
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(`/projects/${encodeURIComponent(PROJECT)}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.status === 401 && !retried) {
      token = null; // expired: ask for a fresh one, once
      return api(method, path, body, true);
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // ---- The Stripe card --------------------------------------------------------------------------
  let integration = null;
  let pollTimer = null;
  let wasActive = false;
  let removalRequested = false; // the last disconnect asked to remove the data

  function importActive(state) {
    if (!state) return false;
    const backfill = state.backfill;
    const removal = state.data_removal;
    const importing = state.status !== "disconnected" && backfill && ["queued", "running"].includes(backfill.status);
    return Boolean(importing || (removal && removal.status === "running"));
  }

  function setBadge(element, text, kind) {
    element.textContent = text;
    element.className = `badge${kind ? ` ${kind}` : ""}`;
  }

  function renderIntegration(state) {
    integration = state;
    $("stripe-card").setAttribute("aria-busy", "false");
    const connected = state.status === "connected" || state.status === "error";
    if (state.status === "connected") setBadge($("stripe-status"), "Connected", "good");
    else if (state.status === "error") setBadge($("stripe-status"), "Needs attention", "bad");
    else setBadge($("stripe-status"), "Not connected", "");
    show($("connect-form"), !connected);
    show($("connected"), connected);
    renderRemoval(state.data_removal);
    if (connected) renderConnected(state);
    schedulePoll(state);
  }

  function renderConnected(state) {
    const mode = el(
      "span",
      { class: `badge ${state.mode === "live" ? "good" : "test"}` },
      state.mode === "live" ? "Live" : "Test",
    );
    $("fact-mode").replaceChildren(mode);
    $("fact-key").textContent = state.key_hint || "";
    $("fact-connected").replaceChildren(state.connected_at ? timeElement(state.connected_at, true) : "");
    renderWebhook(state);

    const warnings = $("integration-warnings");
    warnings.replaceChildren(...(state.warnings || []).map((text) => el("li", {}, text)));
    show(warnings, Boolean(state.warnings && state.warnings.length));

    const reconcile = state.reconcile || {};
    const problems = [reconcile.error, reconcile.warning].filter(Boolean);
    if (state.status === "error" && !problems.length)
      problems.push("The connection to Stripe has a problem: reconnect with a working key.");
    $("integration-problem").textContent = problems.join(" ");
    show($("integration-problem"), problems.length > 0);

    renderBackfill(state.backfill);
  }

  function renderWebhook(state) {
    const reconcile = state.reconcile || {};
    let status;
    if (state.status === "error" || reconcile.error) status = el("span", { class: "badge bad" }, "Not verified");
    else if (state.last_event_at) status = el("span", { class: "badge good" }, "Receiving events");
    else status = el("span", { class: "badge" }, "Enabled, no events yet");
    const nodes = [el("code", {}, state.webhook_endpoint_id || "—"), " ", status];
    const details = [];
    if (state.last_event_at) details.push(["Last event ", timeElement(state.last_event_at, true)]);
    if (reconcile.endpoint_recreated_at)
      details.push(["Recreated ", timeElement(reconcile.endpoint_recreated_at, true)]);
    if (reconcile.checked_at) details.push(["Checked ", timeElement(reconcile.checked_at, true)]);
    for (const detail of details) nodes.push(el("br"), el("span", { class: "help" }, ...detail));
    $("fact-webhook").replaceChildren(...nodes);
  }

  function renderBackfill(backfill) {
    const bar = $("backfill-progress");
    const details = $("backfill-details");
    const status = $("backfill-status");
    bar.classList.remove("done", "failed");
    showError($("backfill-error"), null);
    if (!backfill) {
      setBadge(status, "Not started", "");
      bar.value = 0;
      details.textContent = "";
      return;
    }
    const progress = backfill.progress || {};
    const fraction = progress.slices ? Math.min(1, (progress.slices_done || 0) / progress.slices) : null;
    if (backfill.status === "completed") {
      setBadge(status, "Complete", "good");
      bar.value = 100;
      bar.classList.add("done");
    } else if (backfill.status === "failed") {
      setBadge(status, "Failed", "bad");
      bar.value = fraction === null ? 0 : fraction * 100;
      bar.classList.add("failed");
      showError($("backfill-error"), { message: backfill.error || "The import failed." });
    } else if (backfill.status === "running") {
      setBadge(status, "Importing", "busy");
      if (fraction === null) bar.removeAttribute("value");
      else bar.value = fraction * 100;
    } else {
      setBadge(status, "Queued", "busy");
      if (fraction) bar.value = fraction * 100;
      else bar.removeAttribute("value");
    }
    const phase = backfill.phase ? PHASES[backfill.phase] || backfill.phase : null;
    const parts = [];
    if (backfill.status === "queued") {
      const removal = integration && integration.data_removal;
      parts.push(
        removal && removal.status === "running" ? "Waiting for the imported data to be cleared" : "Waiting to start",
      );
    } else if (phase && backfill.status === "running") parts.push(`Phase: ${phase}`);
    const imported = Number(backfill.charges_imported || 0);
    parts.push(`${numberFormat.format(imported)} ${imported === 1 ? "charge" : "charges"} imported`);
    if (backfill.oldest_imported_at) parts.push(`oldest reached ${formatDate(backfill.oldest_imported_at)}`);
    if (fraction && backfill.status !== "completed") parts.push(`${percentFormat.format(fraction)} of slices done`);
    if (backfill.finished_at && backfill.status === "completed")
      parts.push(`finished ${formatDate(backfill.finished_at, true)}`);
    parts.push(`run ${backfill.run}`);
    details.textContent = parts.join(" · ");
    bar.setAttribute("aria-valuetext", details.textContent);
  }

  function renderRemoval(removal) {
    const element = $("removal-details");
    if (!removal || removal.status !== "running") {
      show(element, false);
      return;
    }
    const removed = Number(removal.charges_removed || 0);
    element.textContent = `Clearing imported Stripe data: ${numberFormat.format(removed)} ${removed === 1 ? "charge" : "charges"} removed so far…`;
    show(element, true);
  }

  function schedulePoll(state) {
    const active = importActive(state);
    if (wasActive && !active) {
      const removed = removalRequested && state.status === "disconnected";
      notice(removed ? "Disconnected. The imported data has been removed." : "");
      removalRequested = false;
      loadRevenue();
      refreshVisitor();
    }
    wasActive = active;
    window.clearTimeout(pollTimer);
    if (active) pollTimer = window.setTimeout(refreshIntegration, POLL_MS);
  }

  async function refreshIntegration() {
    try {
      renderIntegration(await api("GET", "/integrations/stripe"));
      showError($("page-error"), null);
    } catch (error) {
      showError($("page-error"), error);
      window.clearTimeout(pollTimer);
      pollTimer = window.setTimeout(refreshIntegration, POLL_MS * 3);
    }
  }

  function notice(text) {
    const element = $("stripe-notice");
    element.textContent = text;
    show(element, Boolean(text));
  }

  function renderConnectError(error) {
    const box = $("connect-error");
    const input = $("api-key");
    box.replaceChildren();
    delete box.dataset.code;
    if (!error) {
      show(box, false);
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", "api-key-help");
      return;
    }
    box.append(el("p", {}, error.message));
    if (error.missing.length) {
      box.append(
        el("p", { class: "missing-title" }, "Missing permissions:"),
        el(
          "ul",
          { class: "missing" },
          error.missing.map((name) => el("li", {}, name)),
        ),
      );
    }
    if (error.code) box.dataset.code = error.code;
    show(box, true);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "connect-error api-key-help");
  }

  async function onConnect(event) {
    event.preventDefault();
    const input = $("api-key");
    const button = $("connect-button");
    renderConnectError(null);
    notice("");
    const apiKey = input.value.trim();
    if (!apiKey) {
      renderConnectError(
        new ApiError(400, { error: { code: "invalid_request", message: "Paste a Stripe restricted key." } }),
      );
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Connecting…";
    try {
      const connected = await api("POST", "/integrations/stripe", { api_key: apiKey });
      input.value = "";
      renderIntegration(connected);
      notice("Connected. The history import has started.");
      $("resync-button").focus();
    } catch (error) {
      renderConnectError(error);
      if (error.code === "already_connected") refreshIntegration();
      input.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Connect";
    }
  }

  function ask(dialog) {
    return new Promise((resolve) => {
      dialog.returnValue = "";
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
      dialog.showModal();
    });
  }

  async function onResync() {
    const opener = $("resync-button");
    if (!(await ask($("resync-dialog")))) {
      opener.focus();
      return;
    }
    showError($("action-error"), null);
    opener.disabled = true;
    try {
      renderIntegration(await api("POST", "/integrations/stripe/resync"));
      notice("Re-sync started: the imported data is being cleared, then imported again.");
    } catch (error) {
      showError($("action-error"), error);
      if (error.code === "not_connected") refreshIntegration();
    } finally {
      opener.disabled = false;
      opener.focus();
    }
  }

  async function onDisconnect() {
    const dialog = $("disconnect-dialog");
    const radio = dialog.querySelector('input[name="keep_data"][value="true"]');
    radio.checked = true;
    if (!(await ask(dialog))) {
      $("disconnect-button").focus();
      return;
    }
    const keep = dialog.querySelector('input[name="keep_data"]:checked').value !== "false";
    showError($("action-error"), null);
    $("disconnect-button").disabled = true;
    try {
      const result = await api("DELETE", `/integrations/stripe?keep_data=${keep ? "true" : "false"}`);
      removalRequested = Boolean(result.data_removed);
      await refreshIntegration();
      if (!result.data_removed) notice("Disconnected. The imported revenue and timelines are kept.");
      else if (importActive(integration)) notice("Disconnected. The imported data is being removed.");
      else {
        removalRequested = false; // already done: no poll will see it finish
        notice("Disconnected. The imported data has been removed.");
      }
      loadRevenue();
      $("api-key").focus();
    } catch (error) {
      showError($("action-error"), error);
      if (error.code === "not_connected") refreshIntegration();
    } finally {
      $("disconnect-button").disabled = false;
    }
  }

  // ---- Revenue ------------------------------------------------------------------------------------
  let revenue = null;
  let chartCurrency = null;

  function rangeQuery() {
    const from = $("range-from").value;
    const to = $("range-to").value;
    if (from && to && from > to) throw new Error("The start date must not be after the end date.");
    const query = new URLSearchParams();
    if (from) query.set("from", `${from}T00:00:00Z`);
    if (to) {
      const end = new Date(`${to}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1); // the API's `to` is exclusive; the field is inclusive
      query.set("to", end.toISOString().replace(".000Z", "Z"));
    }
    const label =
      from || to
        ? `${from ? formatDate(`${from}T12:00:00Z`) : "Start"} – ${to ? formatDate(`${to}T12:00:00Z`) : "today"}`
        : "All time";
    return { query: query.toString(), label };
  }

  async function loadRevenue() {
    let range;
    try {
      range = rangeQuery();
    } catch (error) {
      showError($("revenue-error"), error);
      return;
    }
    $("revenue-card").setAttribute("aria-busy", "true");
    try {
      revenue = await api("GET", `/revenue${range.query ? `?${range.query}` : ""}`);
      showError($("revenue-error"), null);
      $("revenue-range-label").textContent = range.label;
      renderRevenue();
    } catch (error) {
      showError($("revenue-error"), error);
    } finally {
      $("revenue-card").setAttribute("aria-busy", "false");
    }
  }

  function currenciesOf(report) {
    const found = new Set(Object.keys(report.totals || {}));
    for (const row of report.by_source || []) Object.keys(row.revenue || {}).forEach((cur) => found.add(cur));
    Object.keys((report.unattributed || {}).revenue || {}).forEach((cur) => found.add(cur));
    return [...found].sort();
  }

  function renderRevenue() {
    if (!revenue) return;
    const currencies = currenciesOf(revenue);
    if (!currencies.includes(chartCurrency)) chartCurrency = currencies.includes("usd") ? "usd" : currencies[0] || null;
    const select = $("chart-currency");
    select.replaceChildren(
      ...currencies.map((cur) => el("option", { value: cur, selected: cur === chartCurrency }, cur.toUpperCase())),
    );
    select.disabled = currencies.length === 0;

    const totals = $("totals");
    const entries = Object.entries(revenue.totals || {}).sort(([a], [b]) => a.localeCompare(b));
    totals.replaceChildren(
      ...(entries.length
        ? entries.map(([cur, amount]) =>
            el(
              "li",
              { "data-currency": cur },
              el("span", { class: "cur" }, cur.toUpperCase()),
              el("span", { class: "amount" }, formatMoney(amount, cur)),
            ),
          )
        : [el("li", { class: "empty" }, "No revenue in this range yet.")]),
    );
    renderSources();
    renderTiers();
  }

  function renderSources() {
    const body = $("source-chart").querySelector("tbody");
    const cur = chartCurrency;
    $("source-title").textContent = `Revenue by acquisition source${cur ? ` (${cur.toUpperCase()})` : ""}`;
    const rows = (revenue.by_source || [])
      .map((row) => ({
        label: row.source,
        amount: (row.revenue || {})[cur] || 0,
        payments: row.payments,
        visitors: row.visitors,
        none: false,
      }))
      .filter((row) => row.amount !== 0);
    rows.sort((a, b) => b.amount - a.amount || a.label.localeCompare(b.label));
    const unattributed = revenue.unattributed || {};
    const unattributedAmount = (unattributed.revenue || {})[cur] || 0;
    if (unattributedAmount)
      rows.push({
        label: "Unattributed",
        amount: unattributedAmount,
        payments: unattributed.payments,
        visitors: null,
        none: true,
      });
    const total = (revenue.totals || {})[cur] || 0;
    const max = Math.max(0, ...rows.map((row) => row.amount));
    if (!rows.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No revenue to chart yet.")));
      return;
    }
    body.replaceChildren(
      ...rows.map((row) => {
        const width = max > 0 ? Math.max(0, (row.amount / max) * 100) : 0;
        const share = total > 0 ? percentFormat.format(row.amount / total) : "";
        return el(
          "tr",
          { class: row.none ? "unattributed" : "source", "data-source": row.label },
          el("th", { scope: "row" }, row.label),
          el(
            "td",
            { class: "bar-cell" },
            el("div", {
              class: `bar${row.none ? " none" : ""}`,
              style: { width: `${width.toFixed(2)}%` },
              "aria-hidden": "true",
            }),
            el("span", { class: "visually-hidden" }, share ? `${share} of ${cur.toUpperCase()} revenue` : ""),
          ),
          el("td", { class: "num" }, formatMoney(row.amount, cur)),
          el(
            "td",
            { class: "num" },
            row.payments === null || row.payments === undefined ? "" : numberFormat.format(row.payments),
          ),
          el(
            "td",
            { class: "num" },
            row.visitors === null || row.visitors === undefined ? "—" : numberFormat.format(row.visitors),
          ),
        );
      }),
    );
  }

  function renderTiers() {
    const cur = chartCurrency;
    $("tier-title").textContent = `By attribution tier${cur ? ` (${cur.toUpperCase()})` : ""}`;
    const byTier = revenue.by_tier || {};
    const rows = TIERS.map((tier) => ({ ...tier, amount: (byTier[tier.key] || {})[cur] || 0 }));
    rows.push({
      key: "none",
      label: "Unattributed",
      css: "tnone",
      amount: ((revenue.unattributed || {}).revenue || {})[cur] || 0,
    });
    const total = (revenue.totals || {})[cur] || rows.reduce((sum, row) => sum + row.amount, 0);
    const share = (amount) => (total > 0 ? amount / total : 0);
    $("tier-bar").replaceChildren(
      ...rows
        .filter((row) => row.amount > 0)
        .map((row) =>
          el("span", {
            class: row.css,
            style: { width: `${(share(row.amount) * 100).toFixed(2)}%` },
            title: row.label,
          }),
        ),
    );
    $("tier-table")
      .querySelector("tbody")
      .replaceChildren(
        ...rows.map((row) =>
          el(
            "tr",
            { class: row.key === "none" ? "unattributed" : "", "data-tier": row.key },
            el("th", { scope: "row" }, el("span", { class: `swatch ${row.css}`, "aria-hidden": "true" }), row.label),
            el("td", { class: "num" }, cur ? formatMoney(row.amount, cur) : "—"),
            el("td", { class: "num" }, total > 0 ? percentFormat.format(share(row.amount)) : "—"),
          ),
        ),
      );
  }

  // ---- Visitor lookup -----------------------------------------------------------------------------
  let visitorId = null;
  let nextCursor = null;

  function renderVisitor(visitor) {
    const who = [el("strong", {}, visitor.name || visitor.email || visitor.visitor_id)];
    if (visitor.name && visitor.email) who.push(el("br"), visitor.email);
    who.push(el("br"), el("code", { class: "help" }, visitor.visitor_id));
    $("visitor-name").replaceChildren(...who);

    const acquisition = visitor.acquisition;
    if (acquisition && Object.values(acquisition).some(Boolean)) {
      const main = [acquisition.source, acquisition.medium, acquisition.campaign].filter(Boolean).join(" / ");
      const extra = [
        acquisition.referrer && `from ${acquisition.referrer}`,
        acquisition.landing_page && `landed on ${acquisition.landing_page}`,
      ].filter(Boolean);
      $("visitor-acquisition").replaceChildren(
        main || "(none)",
        ...extra.flatMap((text) => [el("br"), el("span", { class: "help" }, text)]),
      );
    } else {
      $("visitor-acquisition").replaceChildren(el("span", { class: "muted" }, "None recorded"));
    }

    $("visitor-revenue").textContent = formatTotals(visitor.lifetime_revenue) || "No revenue yet";

    const plan = visitor.plan;
    if (plan) {
      const price =
        plan.amount !== null && plan.amount !== undefined && plan.currency
          ? `${formatMoney(plan.amount, plan.currency)}${plan.interval ? ` / ${plan.interval}` : ""}`
          : "";
      const period = plan.current_period_end
        ? [
            el("br"),
            el(
              "span",
              { class: "help" },
              `${plan.cancel_at_period_end ? "Ends" : "Renews"} ${formatDate(plan.current_period_end)}`,
            ),
          ]
        : [];
      $("visitor-plan").replaceChildren(
        el("strong", {}, plan.name || plan.price_id || "Plan"),
        price ? ` · ${price}` : "",
        " ",
        el(
          "span",
          { class: `badge ${plan.status === "active" || plan.status === "trialing" ? "good" : "bad"}` },
          plan.status || "unknown",
        ),
        ...period,
      );
    } else {
      $("visitor-plan").replaceChildren(el("span", { class: "muted" }, "No subscription"));
    }
    const customers = visitor.stripe_customer_ids || [];
    const customerNodes = customers.flatMap((id, i) => (i ? [el("br"), el("code", {}, id)] : [el("code", {}, id)]));
    $("visitor-customers").replaceChildren(
      ...(customerNodes.length ? customerNodes : [el("span", { class: "muted" }, "None linked")]),
    );
  }

  function timelineItem(event) {
    const revenueValue = Number(event.revenue || 0);
    const isRefund = event.type === "Charge Refunded" || revenueValue < 0;
    const isContext = !isRefund && revenueValue === 0;
    const kind = isRefund ? "refund" : isContext ? "context" : "charge";
    const meta = [];
    if (isContext && event.amount !== null && event.amount !== undefined && event.currency)
      meta.push(`Amount ${formatMoney(event.amount, event.currency)}`);
    if (event.stripe_object_id) meta.push(event.stripe_object_id);
    const revenueText = isContext
      ? "adds no revenue"
      : event.currency
        ? formatMoney(revenueValue, event.currency, { signDisplay: "exceptZero" })
        : String(revenueValue);
    return el(
      "li",
      { class: kind, "data-type": event.type, "data-revenue": revenueValue },
      timeElement(event.occurred_at, true),
      el(
        "span",
        { class: "what" },
        event.type,
        event.attribution_tier
          ? el("span", { class: "tier", title: "Attribution tier" }, `tier ${event.attribution_tier}`)
          : null,
        meta.length ? el("span", { class: "meta" }, meta.join(" · ")) : null,
      ),
      el("span", { class: "rev" }, isRefund ? el("span", { class: "visually-hidden" }, "Refund: ") : null, revenueText),
    );
  }

  async function loadTimeline(append) {
    const query = new URLSearchParams({ limit: "50" });
    if (append && nextCursor) query.set("cursor", nextCursor);
    const page = await api("GET", `/visitors/${encodeURIComponent(visitorId)}/timeline?${query}`);
    const list = $("timeline");
    const items = (page.events || []).map(timelineItem);
    if (append) list.append(...items);
    else list.replaceChildren(...(items.length ? items : [el("li", { class: "empty context" }, "No events yet.")]));
    nextCursor = page.next_cursor || null;
    show($("timeline-more"), Boolean(nextCursor));
  }

  async function lookupVisitor(id) {
    visitorId = id;
    showError($("visitor-error"), null);
    $("visitor-card").setAttribute("aria-busy", "true");
    try {
      const visitor = await api("GET", `/visitors/${encodeURIComponent(id)}`);
      renderVisitor(visitor);
      await loadTimeline(false);
      show($("visitor"), true);
    } catch (error) {
      show($("visitor"), false);
      showError(
        $("visitor-error"),
        error.code === "not_found" ? { message: `No visitor with the ID “${id}” in project ${PROJECT}.` } : error,
      );
    } finally {
      $("visitor-card").setAttribute("aria-busy", "false");
    }
  }

  function refreshVisitor() {
    if (visitorId && !$("visitor").hidden) lookupVisitor(visitorId);
  }

  // ---- Start --------------------------------------------------------------------------------------
  function start() {
    $("project-id").textContent = PROJECT;
    document.title = `Ripples · ${PROJECT} · Stripe revenue`;
    $("connect-form").addEventListener("submit", onConnect);
    $("resync-button").addEventListener("click", onResync);
    $("disconnect-button").addEventListener("click", onDisconnect);
    $("range-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadRevenue();
    });
    $("range-all").addEventListener("click", () => {
      $("range-from").value = "";
      $("range-to").value = "";
      loadRevenue();
    });
    $("chart-currency").addEventListener("change", (event) => {
      chartCurrency = event.target.value;
      renderRevenue();
    });
    $("visitor-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("visitor-id").value.trim();
      if (!id) {
        showError($("visitor-error"), { message: "Enter a visitor ID." });
        $("visitor-id").focus();
        return;
      }
      lookupVisitor(id);
    });
    $("timeline-more").addEventListener("click", () =>
      loadTimeline(true).catch((error) => showError($("visitor-error"), error)),
    );

    refreshIntegration();
    loadRevenue();
    const visitor = params.get("visitor");
    if (visitor) {
      $("visitor-id").value = visitor;
      lookupVisitor(visitor);
    }
  }

  // Exposed for tests and the console: the formatting rules.
  window.ripples = { formatMoney, decimalsOf };
  start();
})();
