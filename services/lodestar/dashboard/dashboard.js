// The Lodestar dashboards: asks for an access key once (kept in sessionStorage), lists
// the applications, and draws each page from /v1/apps/{id}/analytics/{query}.
// State lives in the URL hash: #<page>?app=<id>&start=<YYYY-MM-DD>&end=<YYYY-MM-DD>.

import {
  barChart, formatNumber, formatPercent, heatMap, lineChart,
} from "/dashboard/charts.js";

const KEY = "lodestar.dashboard.key";
const FIXED_APP = "lodestar.dashboard.app"; // set when signed in with an application key
const PAGES = ["overview", "campaigns", "journeys", "channels"];
const $ = (id) => document.getElementById(id);

const state = { page: "overview", app: "", start: "", end: "", appKeyOnly: false };

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function readHash() {
  const [page, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  state.page = PAGES.includes(page) ? page : "overview";
  const today = new Date();
  state.end = params.get("end") || state.end || isoDay(today);
  state.start = params.get("start") || state.start ||
    isoDay(new Date(Date.parse(state.end) - 29 * 86400000));
  state.app = params.get("app") || state.app;
}

function writeHash() {
  const params = new URLSearchParams({ app: state.app, start: state.start, end: state.end });
  const hash = `#${state.page}?${params}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function setStatus(message, isError) {
  const node = $("status");
  node.textContent = message || "";
  node.className = isError ? "error" : "";
}

class AuthError extends Error {}

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new AuthError("no key");
  const response = await fetch(path, { headers: { Authorization: `Bearer ${key}` } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 403) throw new AuthError(body.Message || "forbidden");
  if (!response.ok) throw new Error(body.Message || `${response.status} ${response.statusText}`);
  return body;
}

async function query(name, extra) {
  const params = new URLSearchParams({ start: state.start, end: state.end, ...(extra || {}) });
  const app = encodeURIComponent(state.app);
  const body = await api(`/v1/apps/${app}/analytics/${name}?${params}`);
  return body.AnalyticsQueryResponse.Result;
}

// -- key and applications -----------------------------------------------------------

function askForKey(message) {
  $("login-form").reset();
  $("login-error").textContent = message || "";
  if (!$("login").open) $("login").showModal();
}

async function loadApps() {
  const select = $("app");
  let apps = [];
  const fixed = sessionStorage.getItem(FIXED_APP);
  state.appKeyOnly = Boolean(fixed);
  if (fixed) {
    state.app = fixed;
  } else {
    try {
      apps = (await api("/v1/apps?page-size=100")).Item || [];
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      // an application key may not list applications: it types its application id
      state.appKeyOnly = true;
    }
  }
  select.replaceChildren();
  for (const app of apps) {
    const option = document.createElement("option");
    option.value = app.Id;
    option.textContent = app.Name ? `${app.Name} (${app.Id})` : app.Id;
    select.appendChild(option);
  }
  select.hidden = state.appKeyOnly;
  $("app-id").hidden = !state.appKeyOnly;
  if (state.appKeyOnly) {
    $("app-id").value = state.app;
  } else {
    if (!apps.some((a) => a.Id === state.app)) state.app = apps.length ? apps[0].Id : "";
    select.value = state.app;
  }
}

// -- pages --------------------------------------------------------------------------

function tile(name, value) {
  const node = document.createElement("div");
  node.className = "tile";
  const v = document.createElement("div");
  v.className = "value";
  v.textContent = value;
  const n = document.createElement("div");
  n.className = "name";
  n.textContent = name;
  node.append(v, n);
  return node;
}

function table(headers, rows) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell;
  }
  return t;
}

function card(title) {
  const node = document.createElement("article");
  node.className = "card";
  const h = document.createElement("h2");
  h.textContent = title;
  node.appendChild(h);
  return node;
}

function chartHost(parent) {
  const host = document.createElement("div");
  parent.appendChild(host);
  return host;
}

async function overview() {
  const [active, sessions, retention, top, revenue] = await Promise.all([
    query("active-users"), query("sessions"), query("retention", { days: "7" }),
    query("top-events", { limit: "10" }), query("revenue"),
  ]);
  const labels = active.Days.map((d) => d.Date.slice(5));
  lineChart($("chart-active"), {
    labels, title: "Active endpoints",
    series: [
      { name: "DAU", values: active.Days.map((d) => d.DailyActiveEndpoints) },
      { name: "WAU", values: active.Days.map((d) => d.WeeklyActiveEndpoints) },
      { name: "MAU", values: active.Days.map((d) => d.MonthlyActiveEndpoints) },
    ],
  });
  barChart($("chart-sessions"), {
    labels: sessions.Days.map((d) => d.Date.slice(5)), title: "Sessions",
    series: [{ name: "Sessions", values: sessions.Days.map((d) => d.Sessions) }],
  });
  lineChart($("chart-session-length"), {
    labels: sessions.Days.map((d) => d.Date.slice(5)), title: "Session length",
    series: [
      { name: "p50", values: sessions.Days.map((d) => d.P50Seconds) },
      { name: "p90", values: sessions.Days.map((d) => d.P90Seconds) },
    ],
  });
  heatMap($("chart-retention"), {
    title: "Retention",
    rows: retention.Cohorts.map((c) => `${c.Date.slice(5)} (${c.Size})`),
    columns: Array.from({ length: retention.Days + 1 }, (_, k) => `day ${k}`),
    values: retention.Cohorts.map((c) => c.Rates),
  });
  barChart($("chart-top-events"), {
    labels: top.Events.map((e) => e.EventType), title: "Top events",
    series: [{ name: "Events", values: top.Events.map((e) => e.Count) }],
  });
  const last = active.Days[active.Days.length - 1] || {};
  const tiles = [
    tile("DAU (last day)", formatNumber(last.DailyActiveEndpoints)),
    tile("MAU (last day)", formatNumber(last.MonthlyActiveEndpoints)),
    tile("Sessions", formatNumber(sessions.Total.Sessions)),
    tile("Median session (s)", formatNumber(sessions.Total.P50Seconds)),
  ];
  for (const t of revenue.Totals) {
    tiles.push(tile(`Revenue ${t.Currency || "(no currency)"}`, formatNumber(t.Revenue)));
  }
  $("overview-tiles").replaceChildren(...tiles);
  await funnel();
}

async function funnel() {
  const result = await query("funnel", {
    steps: $("funnel-steps").value, window: $("funnel-window").value,
  });
  barChart($("chart-funnel"), {
    labels: result.Steps.map((s) => s.EventType), title: "Funnel",
    series: [{ name: "Endpoints", values: result.Steps.map((s) => s.Count) }],
  });
}

const STAGES = ["Sent", "Delivered", "Opened", "Clicked", "Converted"];

async function campaigns() {
  const result = await query("campaigns-page");
  $("campaign-note").textContent =
    `Per treatment: messages sent, delivered, opened, clicked, and converted (the endpoint ` +
    `recorded ${result.ConversionEvent} within ${result.ConversionDays} days of delivery). ` +
    `A winner is called only when a two-proportion z-test is significant ` +
    `(alpha ${result.Rule.Alpha}, at least ${result.Rule.MinSends} sends per treatment).`;
  const list = $("campaign-list");
  list.replaceChildren();
  if (!result.Campaigns.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No campaign messages in this range.";
    list.appendChild(p);
  }
  for (const campaign of result.Campaigns) {
    const node = card(`Campaign ${campaign.CampaignId}`);
    node.dataset.campaign = campaign.CampaignId;
    barChart(chartHost(node), {
      labels: STAGES, title: `Campaign ${campaign.CampaignId}`,
      series: campaign.Treatments.map((t) => ({
        name: `treatment ${t.TreatmentId}`, values: STAGES.map((s) => t[s]),
      })),
    });
    const verdict = document.createElement("p");
    const sig = campaign.Significance;
    verdict.className = `verdict ${sig.Winner === null ? "pending" : "winner"}`;
    verdict.textContent = sig.Winner === null ? sig.Message : `Winner: treatment ${sig.Winner}`;
    node.appendChild(verdict);
    node.appendChild(table(
      ["Treatment", ...STAGES, "Conversion"],
      campaign.Treatments.map((t) => [
        t.TreatmentId, ...STAGES.map((s) => formatNumber(t[s])), formatPercent(t.ConversionRate),
      ]),
    ));
    if (sig.Tests.length) {
      node.appendChild(table(
        ["Comparison", "Difference", `${+((1 - sig.AlphaPerTest) * 100).toFixed(2)}% CI`,
          "p-value"],
        sig.Tests.map((t) => [
          `${t.TreatmentId} vs ${t.AgainstTreatmentId}`, formatPercent(t.Difference),
          `${formatPercent(t.ConfidenceInterval[0])} … ${formatPercent(t.ConfidenceInterval[1])}`,
          t.PValue.toPrecision(3),
        ]),
      ));
    }
    list.appendChild(node);
  }
}

async function journeys() {
  const result = await query("journeys-page");
  const list = $("journey-list");
  list.replaceChildren();
  if (!result.Journeys.length) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No journey activity in this range.";
    list.appendChild(p);
  }
  for (const journey of result.Journeys) {
    const node = card(`Journey ${journey.JourneyId} — ${journey.Entered} endpoints entered`);
    node.dataset.journey = journey.JourneyId;
    const outcomes = [...new Set(journey.Activities.flatMap((a) => Object.keys(a.Outcomes)))]
      .sort();
    const labels = journey.Activities.map((a) => a.ActivityId || a.ActivityType);
    barChart(chartHost(node), {
      labels, title: `Journey ${journey.JourneyId}`,
      series: outcomes.map((o) => ({
        name: o, values: journey.Activities.map((a) => a.Outcomes[o] || 0),
      })),
    });
    node.appendChild(table(
      ["Activity", "Type", ...outcomes, "Branches"],
      journey.Activities.map((a) => [
        a.ActivityId || "(journey)", a.ActivityType,
        ...outcomes.map((o) => formatNumber(a.Outcomes[o] || 0)),
        Object.entries(a.Branches).map(([b, n]) => `${b}: ${n}`).join(", "),
      ]),
    ));
    list.appendChild(node);
  }
}

async function channels() {
  const result = await query("channels-page");
  const kinds = ["Sent", "Delivered", "Bounced", "Complained", "OptedOut"];
  barChart($("chart-channels"), {
    labels: result.Channels.map((c) => c.Channel), title: "Messages per channel",
    series: kinds.map((k) => ({ name: k, values: result.Channels.map((c) => c[k]) })),
  });
  const days = [...new Set(result.Days.map((d) => d.Date))].sort();
  const names = result.Channels.map((c) => c.Channel);
  lineChart($("chart-channel-days"), {
    labels: days.map((d) => d.slice(5)), title: "Delivered per day",
    series: names.map((name) => ({
      name,
      values: days.map((day) => {
        const row = result.Days.find((d) => d.Date === day && d.Channel === name);
        return row ? row.Delivered : 0;
      }),
    })),
  });
  const spent = result.Countries.filter((c) => c.SpendUsd > 0);
  barChart($("chart-spend"), {
    labels: spent.map((c) => `${c.Channel} ${c.Country || "?"}`), title: "Spend",
    series: [{ name: "USD", values: spent.map((c) => c.SpendUsd) }],
  });
  $("channel-table").replaceChildren(table(
    ["Channel", "Country", "Sent", "Delivery rate", "Bounce rate", "Complaint rate",
      "Opt-outs", "Spend (USD)"],
    [...result.Channels.map((c) => ({ ...c, Country: "all" })), ...result.Countries].map((c) => [
      c.Channel, c.Country || "(none)", formatNumber(c.Sent), formatPercent(c.DeliveryRate),
      formatPercent(c.BounceRate), formatPercent(c.ComplaintRate), formatNumber(c.OptedOut),
      c.SpendUsd.toFixed(4),
    ]),
  ));
}

const RENDER = { overview, campaigns, journeys, channels };

async function render() {
  readHash();
  for (const page of PAGES) $(page).hidden = page !== state.page;
  for (const link of document.querySelectorAll("#pages a")) {
    link.classList.toggle("active", link.dataset.page === state.page);
    link.href = `#${link.dataset.page}?${new URLSearchParams({
      app: state.app, start: state.start, end: state.end,
    })}`;
  }
  $("start").value = state.start;
  $("end").value = state.end;
  if (!sessionStorage.getItem(KEY)) return askForKey();
  document.body.dataset.ready = "false";
  try {
    if (!$("app").options.length && !state.appKeyOnly) await loadApps();
    writeHash();
    if (!state.app) {
      setStatus(state.appKeyOnly ? "Type your application id." : "No applications yet.");
      return;
    }
    setStatus("Loading…");
    await RENDER[state.page]();
    setStatus(`${state.app}: ${state.start} to ${state.end}`);
  } catch (error) {
    if (error instanceof AuthError) {
      sessionStorage.removeItem(KEY);
      askForKey(`The key was refused: ${error.message}`);
    } else {
      setStatus(error.message, true);
    }
  } finally {
    document.body.dataset.ready = "true";
    document.body.dataset.page = state.page;
  }
}

function wire() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, `${$("key-id").value.trim()}:${$("key-secret").value.trim()}`);
    const app = $("key-app").value.trim();
    if (app) sessionStorage.setItem(FIXED_APP, app);
    else sessionStorage.removeItem(FIXED_APP);
    $("key-secret").value = "";
    $("login").close();
    $("app").replaceChildren();
    state.appKeyOnly = false;
    render();
  });
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    state.start = $("start").value;
    state.end = $("end").value;
    state.app = state.appKeyOnly ? $("app-id").value.trim() : $("app").value;
    history.replaceState(null, "", `#${state.page}?${new URLSearchParams({
      app: state.app, start: state.start, end: state.end,
    })}`);
    render();
  });
  $("app").addEventListener("change", () => $("controls").requestSubmit());
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(FIXED_APP);
    state.appKeyOnly = false;
    $("app").replaceChildren();
    askForKey();
  });
  $("funnel-form").addEventListener("submit", (event) => {
    event.preventDefault();
    funnel().catch((error) => setStatus(error.message, true));
  });
  window.addEventListener("hashchange", render);
}

wire();
render();
