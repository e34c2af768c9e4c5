import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  // Relative asset URLs: the build works from any path it is served under.
  base: "./",
  // With `npm run dev`, API calls go to a provider-sync-server on :8080.
  server: { proxy: { "/api/provider-sync": { target: "http://127.0.0.1:8080", ws: true } } },
});
