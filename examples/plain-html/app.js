// The live catalog with the provider-sync SDK from a classic script tag. All
// syncing (WebSocket, polling fallback, IndexedDB cache, resyncs) is the
// SDK's; this file only renders what `subscribe` hands it.
//
// Made for catalogs of thousands of models (LiteLLM's has ~3,400 over ~100
// providers): a search box, a provider filter and a "Show deprecated" switch
// narrow the models, and the table shows at most MAX_ROWS of them. The
// controls are in index.html and never re-created, so a re-render on a sync
// change keeps their focus and value. Every id and name goes in as text
// (textContent, setAttribute, new Option), never as HTML.
(function () {
  "use strict";
  // ?api=URL points the page at a server elsewhere (the end-to-end tests do).
  var apiBaseUrl = new URLSearchParams(location.search).get("api") || "/api/provider-sync";
  var $ = function (id) { return document.getElementById(id); };
  var LABELS = { synced: "Synced", syncing: "Syncing…", stale: "Showing cached data", error: "Sync error", disconnected: "Disconnected" };
  /** Rows of the models table at most; the rest is for the search to narrow. */
  var MAX_ROWS = 200;
  /** Deprecation notices shown while deprecated models are hidden from the table. */
  var MAX_NOTICES = 10;

  /** The last state the SDK handed over, and the models sorted for it. */
  var current = null;
  var sorted = { models: null, providers: null, version: null, list: [] };
  var providerOptionsKey = null;
  /** "Provider 2" before "Provider 10", "gpt-4o" next to "GPT-4o". */
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function compareIds(a, b) {
    return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
  }

  function el(tag, text, className, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }

  /** 3345 → "3,345", the same in every locale. */
  function count(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** A price per 1M tokens: "$2.50", "$0.125", "$0.0042". */
  function money(value) {
    return "$" + (Number(value.toFixed(2)) === value ? value.toFixed(2) : String(value));
  }

  function plural(n, one, many) {
    return count(n) + " " + (n === 1 ? one : many);
  }

  function isDeprecated(model) {
    return model.deprecation_status !== "active";
  }

  function renderStatus(state) {
    var label = LABELS[state.status];
    if (state.status === "synced" && state.transport === "polling") label = "Synced (polling)";
    $("sync-status").className = "psync-status psync-status--" + state.status;
    $("status-text").textContent = label;
    var when = state.lastSyncTime ? new Date(state.lastSyncTime).toLocaleTimeString() : "never";
    $("status-details").textContent =
      "version " + state.version + " · " + state.transport + " · last sync " + when + (state.lastError ? " · " + state.lastError : "");
  }

  /** Days until the sunset date (negative once passed), or null without one:
   * the SDK's rule (the server's), not restated here. */
  function daysLeft(model) {
    return ProviderSync.sunsetOutlook(model.sunset_date, model.deprecation_status).daysUntilSunset;
  }

  function deprecation(model, names) {
    var outlook = ProviderSync.sunsetOutlook(model.sunset_date, model.deprecation_status);
    var days = outlook.daysUntilSunset;
    var level = outlook.urgency === "sunset" ? "sunset"
      : outlook.urgency === "high" || outlook.urgency === "critical" ? "urgent" : "notice";
    var box = el("div", null, "psync-deprecation psync-deprecation--" + level,
      { role: level === "notice" ? "note" : "alert", "data-model-id": model.id });
    var when = days === null ? "no shutdown date announced" : days < 0 ? "stopped working on " + model.sunset_date
      : "stops working on " + model.sunset_date + " (in " + days + " days)";
    box.append(el("strong", "Deprecated: "), when);
    if (model.replacement_model_id) {
      box.append(el("br"), "Use " + (names.get(model.replacement_model_id) || model.replacement_model_id) + " instead.");
    }
    return box;
  }

  /** Providers with a problem first (their warnings must not drown in a
   * hundred healthy ones), otherwise in the SDK's order. */
  function renderProviders(state, providerNames) {
    var troubled = state.providers.filter(function (p) { return p.status !== "available"; });
    var healthy = state.providers.filter(function (p) { return p.status === "available"; });
    $("provider-count").textContent = "(" + count(state.providers.length) +
      (troubled.length ? " · " + count(troubled.length) + " not available" : "") + ")";
    var list = $("providers");
    list.classList.toggle("providers--many", state.providers.length > 12);
    list.replaceChildren.apply(list, troubled.concat(healthy).map(function (p) {
      var meta = p.model_ids.length + " models · " + p.provider_type;
      // One line each; the title has what an ellipsis may cut.
      var li = el("li", null, null, { "data-provider-id": p.id, title: p.display_name + " (" + p.id + "): " + p.status + " · " + meta });
      li.append(el("span", p.display_name, "name"), el("span", p.status, "badge status badge-" + p.status));
      if (p.id === state.activeProviderId) li.append(el("span", "active", "badge badge-current"));
      li.append(" ", el("small", meta, "meta"));
      if (p.status !== "available") {
        var fallback = p.fallback_provider_id ? " Fallback: " + (providerNames.get(p.fallback_provider_id) || p.fallback_provider_id) + "." : "";
        li.append(el("p", p.display_name + " is " + p.status + "." + fallback, "psync-provider-warning psync-provider-warning--" + p.status, { role: "alert" }));
      }
      return li;
    }));
  }

  /** "All providers" and each provider (by name) with its model count;
   * rebuilt only when that list changes, keeping the choice. */
  function renderProviderFilter(state, providerNames, showDeprecated) {
    var counts = new Map();
    state.models.forEach(function (m) {
      if (showDeprecated || !isDeprecated(m)) counts.set(m.provider_id, (counts.get(m.provider_id) || 0) + 1);
    });
    var options = state.providers.map(function (p) {
      return { value: p.id, name: p.display_name, text: p.display_name + " (" + count(counts.get(p.id) || 0) + ")" };
    }).sort(function (a, b) { return collator.compare(a.name, b.name) || compareIds(a.value, b.value); });
    var key = JSON.stringify(options.map(function (o) { return [o.value, o.text]; }));
    var select = $("provider-filter");
    if (key === providerOptionsKey) return;
    providerOptionsKey = key;
    var chosen = select.value;
    var nodes = [new Option("All providers", "")].concat(options.map(function (o) { return new Option(o.text, o.value); }));
    select.replaceChildren.apply(select, nodes);
    // A provider that is gone falls back to all of them.
    select.value = providerNames.has(chosen) ? chosen : "";
  }

  /** The models by provider name, then provider id, then model id; sorted
   * again only when the SDK hands over new models or providers. */
  function sortedModels(state, providerNames) {
    if (sorted.models === state.models && sorted.providers === state.providers && sorted.version === state.version) {
      return sorted.list;
    }
    var keyed = state.models.map(function (m) {
      return { model: m, provider: providerNames.get(m.provider_id) || m.provider_id, search: (m.id + "\n" + m.name).toLowerCase() };
    });
    keyed.sort(function (a, b) {
      return collator.compare(a.provider, b.provider) || compareIds(a.model.provider_id, b.model.provider_id) ||
        compareIds(a.model.id, b.model.id);
    });
    sorted = { models: state.models, providers: state.providers, version: state.version, list: keyed };
    return keyed;
  }

  function modelRow(m, providerNames, names) {
    var tr = el("tr", null, isDeprecated(m) ? "deprecated" : "", { "data-model-id": m.id });
    var name = el("td", null, "name");
    name.append(el("span", m.name, "model-name"));
    if (m.supports_reasoning === true) name.append(el("span", "reasoning", "badge badge-capability badge-reasoning"));
    if (m.id !== m.name) name.append(el("br"), el("code", m.id, "model-id"));
    var price = el("td", null, "num price");
    if (m.pricing) {
      price.append(money(m.pricing.input_per_million) + " / " + money(m.pricing.output_per_million));
      var cached = m.pricing.cached_input_per_million;
      if (cached !== undefined && cached !== null) price.append(el("br"), el("small", "cached in " + money(cached)));
    } else {
      price.append("—");
    }
    var status = el("td");
    status.append(el("span", m.deprecation_status, "badge badge-" + m.deprecation_status));
    if (isDeprecated(m)) status.append(deprecation(m, names));
    tr.append(
      name,
      el("td", providerNames.get(m.provider_id) || m.provider_id),
      el("td", m.context_window.toLocaleString(), "num"),
      el("td", m.max_output_tokens.toLocaleString(), "num"),
      price,
      status
    );
    return tr;
  }

  /** Upcoming shutdowns first (soonest first), then those without a date,
   * then those already past (latest first). */
  function byUrgency(a, b) {
    var da = daysLeft(a), db = daysLeft(b);
    var rank = function (d) { return d === null ? 1 : d < 0 ? 2 : 0; };
    if (rank(da) !== rank(db)) return rank(da) - rank(db);
    if (da !== db && da !== null) return rank(da) === 0 ? da - db : db - da;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  /** The table, the counts and, while deprecated models are hidden from the
   * table, their notices (so a deprecation still shows). */
  function renderModels(state) {
    var providerNames = new Map(state.providers.map(function (p) { return [p.id, p.display_name]; }));
    var names = new Map(state.models.map(function (m) { return [m.id, m.name]; }));
    var query = $("search").value.trim().toLowerCase();
    var showDeprecated = $("show-deprecated").checked;
    renderProviderFilter(state, providerNames, showDeprecated);
    var provider = $("provider-filter").value;

    var matching = [];
    var hidden = [];
    sortedModels(state, providerNames).forEach(function (entry) {
      var m = entry.model;
      if (provider && m.provider_id !== provider) return;
      if (query && entry.search.indexOf(query) === -1) return;
      if (!showDeprecated && isDeprecated(m)) hidden.push(m);
      else matching.push(m);
    });

    var shown = matching.slice(0, MAX_ROWS);
    $("model-count").textContent = "Showing " + count(shown.length) + " of " + plural(state.models.length, "model", "models");
    var hints = [];
    if (matching.length > shown.length) hints.push(count(matching.length) + " matching");
    if (hidden.length) hints.push(plural(hidden.length, "deprecated model", "deprecated models") + " hidden");
    $("model-hint").textContent = hints.length ? "(" + hints.join(" · ") + ")" : "";

    var body = $("models");
    if (shown.length === 0) {
      var empty = el("td", state.models.length ? "No model matches." : "No models yet.", "empty", { colspan: "6" });
      var row = el("tr");
      row.append(empty);
      body.replaceChildren(row);
    } else {
      body.replaceChildren.apply(body, shown.map(function (m) { return modelRow(m, providerNames, names); }));
    }
    var more = $("models-more");
    more.hidden = matching.length <= shown.length;
    more.textContent = "Showing the first " + count(shown.length) + " of " + count(matching.length) +
      " matching models. Refine the search to see the rest.";

    // Deprecated models hidden from the table still get a notice.
    var notices = hidden.slice().sort(byUrgency);
    var listed = notices.slice(0, MAX_NOTICES);
    $("deprecations-section").hidden = listed.length === 0;
    $("deprecations-count").textContent = "(" + count(notices.length) + ")";
    var box = $("deprecations");
    box.replaceChildren.apply(box, listed.map(function (m) {
      var item = el("div", null, "notice");
      item.append(el("span", m.name, "model-name"), " ",
        el("small", providerNames.get(m.provider_id) || m.provider_id, "meta"), deprecation(m, names));
      return item;
    }));
    var rest = $("deprecations-more");
    rest.hidden = notices.length <= listed.length;
    rest.textContent = count(notices.length - listed.length) + " more: tick \u201cShow deprecated\u201d to list them.";
  }

  function render(state) {
    current = state;
    renderStatus(state);
    var providerNames = new Map(state.providers.map(function (p) { return [p.id, p.display_name]; }));
    renderProviders(state, providerNames);
    renderModels(state);
  }

  function rerenderModels() {
    if (current) renderModels(current);
  }
  $("search").addEventListener("input", rerenderModels);
  $("provider-filter").addEventListener("change", rerenderModels);
  $("show-deprecated").addEventListener("change", rerenderModels);

  ProviderSync.ready.then(function () {
    var sync = new ProviderSync.ProviderSyncService({
      apiBaseUrl: apiBaseUrl,
      includeDeprecated: true,
      reconnectMaxDelay: 5000,
      logLevel: "info",
    });
    window.providerSync = sync; // to look at from the console
    sync.subscribe(render);
    render(sync.getState());
    $("sync-now").addEventListener("click", function () { sync.forceSync().catch(function () {}); });
    sync.initialize().catch(function () { render(sync.getState()); });
  }, function (error) {
    $("status-text").textContent = "Could not load provider-sync: " + error.message;
  });
})();
