// Server rendering as an application server does it: the wasm loaded from
// its bytes, then renderToString with the state fetched from GET /state.
import { readFileSync } from "node:fs";
import { renderToString } from "react-dom/server";
import { loadSync } from "provider-sync";
import { App } from "./app.jsx";

export function render(wasmPath, config, bootstrap) {
  loadSync(readFileSync(wasmPath));
  return renderToString(<App config={config} bootstrap={bootstrap} />);
}
