import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  // Relative asset URLs: the build works from any path it is served under.
  base: "./",
  // `npm run dev`: Vite's dependency pre-bundling would copy the package's
  // JavaScript to node_modules/.vite/deps/ without its wasm, which it finds
  // next to itself through `import.meta.url`.
  optimizeDeps: { exclude: ["provider-sync"] },
  // With `npm run dev`, API calls go to a provider-sync-server on :8080.
  server: { proxy: { "/api/provider-sync": { target: "http://127.0.0.1:8080", ws: true } } },
});
