// A minimal live view of the catalog with plain fetch and WebSocket. It keeps
// no sync logic of its own: on any change it refetches the whole state.
const base = "/api/provider-sync";
const $ = (id) => document.getElementById(id);
let state = null;
let retry = 1000;

function text(tag, content, className) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

function setStatus(kind, message) {
  $("status").className = `status status-${kind}`;
  $("status").textContent = message;
}

function render() {
  const providers = $("providers");
  providers.replaceChildren(
    ...state.providers.map((p) => {
      const li = document.createElement("li");
      li.append(text("span", p.display_name, "name"), text("span", p.status, `badge badge-${p.status}`));
      if (p.id === state.active_provider_id) li.append(text("span", "active", "badge badge-active-provider"));
      li.append(document.createElement("br"), text("small", `${p.model_ids.length} models · ${p.provider_type}`));
      return li;
    }),
  );
  const names = new Map(state.all_models.map((m) => [m.id, m.name]));
  const providerNames = new Map(state.providers.map((p) => [p.id, p.display_name]));
  $("models").replaceChildren(
    ...state.all_models.map((m) => {
      const tr = document.createElement("tr");
      if (m.deprecation_status !== "active") tr.className = "deprecated";
      const price = m.pricing ? `${m.pricing.input_per_million} / ${m.pricing.output_per_million}` : "—";
      const status = document.createElement("td");
      status.append(text("span", m.deprecation_status, `badge badge-${m.deprecation_status}`));
      if (m.deprecation_status !== "active") {
        const replacement = m.replacement_model_id ? ` → use ${names.get(m.replacement_model_id) ?? m.replacement_model_id}` : "";
        status.append(document.createElement("br"), text("span", `sunset ${m.sunset_date ?? "not announced"}${replacement}`, "warning"));
      }
      tr.append(
        text("td", m.name),
        text("td", providerNames.get(m.provider_id) ?? m.provider_id),
        text("td", m.context_window.toLocaleString(), "num"),
        text("td", m.max_output_tokens.toLocaleString(), "num"),
        text("td", price, "num"),
        status,
      );
      return tr;
    }),
  );
}

async function load() {
  const response = await fetch(`${base}/state`);
  if (!response.ok) throw new Error(`GET /state: HTTP ${response.status}`);
  state = await response.json();
  render();
  setStatus("synced", `synced · version ${state.metadata.version}`);
}

// Coalesces bursts (a replay of many events) into one refetch at a time.
let loading = null;
let again = false;
function refresh() {
  if (loading) { again = true; return loading; }
  loading = load().finally(() => {
    loading = null;
    if (again) { again = false; refresh(); }
  });
  return loading;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = state ? `?since=${state.metadata.version}&epoch=${state.metadata.epoch}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}${base}/ws${query}`);
  ws.onopen = () => { retry = 1000; };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "hello" || event.type === "heartbeat" || event.type === "error") {
      if (event.type === "heartbeat" && state && event.data.version !== state.metadata.version) refresh();
      return;
    }
    refresh();
  };
  ws.onclose = () => {
    setStatus("disconnected", `disconnected · retrying in ${Math.round(retry / 1000)} s`);
    setTimeout(() => load().then(connect, connect), retry);
    retry = Math.min(retry * 2, 30000);
  };
}

load().catch((e) => setStatus("disconnected", e.message)).finally(connect);
