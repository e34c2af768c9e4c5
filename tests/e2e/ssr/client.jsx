// The browser half: the wasm loaded first, then hydration with the same
// bootstrap the server rendered from. Recoverable errors (a hydration
// mismatch among them) are kept for the test to read.
import { hydrateRoot } from "react-dom/client";
import { load } from "provider-sync";
import { App } from "./app.jsx";

window.__recoverable = [];
const { config, bootstrap } = JSON.parse(document.getElementById("bootstrap").textContent);
await load();
hydrateRoot(document.getElementById("root"), <App config={config} bootstrap={bootstrap} />, {
  onRecoverableError: (error) => window.__recoverable.push(String(error?.message ?? error)),
});
