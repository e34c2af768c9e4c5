// The live catalog with the provider-sync SDK from a classic script tag. All
// syncing (WebSocket, polling fallback, IndexedDB cache, resyncs) is the
// SDK's; this file only renders what `subscribe` hands it.
(function () {
  "use strict";
  // ?api=URL points the page at a server elsewhere (the end-to-end tests do).
  var apiBaseUrl = new URLSearchParams(location.search).get("api") || "/api/provider-sync";
  var $ = function (id) { return document.getElementById(id); };
  var LABELS = { synced: "Synced", syncing: "Syncing…", stale: "Showing cached data", error: "Sync error", disconnected: "Disconnected" };
  var DAY = 86400000;

  function el(tag, text, className, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    return node;
  }

  function renderStatus(state) {
    var label = LABELS[state.status];
    if (state.status === "synced" && state.transport === "polling") label = "Synced (polling)";
    $("sync-status").className = "psync-status psync-status--" + state.status;
    $("status-text").textContent = label;
    var when = state.lastSyncTime ? new Date(state.lastSyncTime).toLocaleTimeString() : "never";
    $("status-details").textContent =
      "version " + state.version + " · " + state.transport + " · last sync " + when + (state.error ? " · " + state.error : "");
  }

  function deprecation(model, names) {
    var days = model.sunset_date ? Math.round((Date.parse(model.sunset_date + "T00:00:00Z") - Date.now()) / DAY) : null;
    var level = days === null ? "notice" : days < 0 ? "sunset" : days <= 30 ? "urgent" : "notice";
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

  function render(state) {
    renderStatus(state);
    var names = new Map(state.models.map(function (m) { return [m.id, m.name]; }));
    var providerNames = new Map(state.providers.map(function (p) { return [p.id, p.display_name]; }));
    $("providers").replaceChildren.apply($("providers"), state.providers.map(function (p) {
      var li = el("li", null, null, { "data-provider-id": p.id });
      li.append(el("span", p.display_name, "name"), el("span", p.status, "badge status badge-" + p.status));
      if (p.id === state.activeProviderId) li.append(el("span", "active", "badge badge-current"));
      li.append(el("br"), el("small", p.model_ids.length + " models · " + p.provider_type));
      if (p.status !== "available") {
        var fallback = p.fallback_provider_id ? " Fallback: " + (providerNames.get(p.fallback_provider_id) || p.fallback_provider_id) + "." : "";
        li.append(el("p", p.display_name + " is " + p.status + "." + fallback, "psync-provider-warning psync-provider-warning--" + p.status, { role: "alert" }));
      }
      return li;
    }));
    $("model-count").textContent = "(" + state.models.length + ")";
    $("models").replaceChildren.apply($("models"), state.models.map(function (m) {
      var tr = el("tr", null, m.deprecation_status === "active" ? "" : "deprecated", { "data-model-id": m.id });
      var price = m.pricing ? m.pricing.input_per_million + " / " + m.pricing.output_per_million : "—";
      var status = el("td");
      status.append(el("span", m.deprecation_status, "badge badge-" + m.deprecation_status));
      if (m.deprecation_status !== "active") status.append(deprecation(m, names));
      tr.append(
        el("td", m.name, "name"),
        el("td", providerNames.get(m.provider_id) || m.provider_id),
        el("td", m.context_window.toLocaleString(), "num"),
        el("td", m.max_output_tokens.toLocaleString(), "num"),
        el("td", price, "num"),
        status
      );
      return tr;
    }));
  }

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
