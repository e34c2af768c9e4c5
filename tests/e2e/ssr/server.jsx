// Server rendering as an application server does it: the wasm loaded from
// its bytes, then renderToString with the state fetched from GET /state.
import { readFileSync } from "node:fs";
import { renderToString } from "react-dom/server";
import { initSync, loadSync } from "provider-sync";
import { App } from "./app.jsx";

export function render(wasmPath, config, bootstrap) {
  loadSync(readFileSync(wasmPath));
  return renderToString(<App config={config} bootstrap={bootstrap} />);
}

/** The wasm memory's size in bytes (the instance `loadSync` made: `initSync`
 * returns it as it is once loaded). */
export function wasmMemoryBytes(wasmPath) {
  const exports = initSync({ module: readFileSync(wasmPath) });
  return Object.values(exports).find((value) => value instanceof WebAssembly.Memory).buffer.byteLength;
}
