import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The tests import the built package (pkg/, made by scripts/build-pkg.sh),
// as an application would.
const pkg = fileURLToPath(new URL("../pkg/", import.meta.url));

export default defineConfig({
  esbuild: { jsx: "automatic" },
  resolve: {
    alias: [
      { find: /^provider-sync$/, replacement: `${pkg}index.js` },
      { find: /^provider-sync\/react$/, replacement: `${pkg}react/index.js` },
      { find: /^provider-sync\/react-query$/, replacement: `${pkg}react-query/index.js` },
    ],
    // pkg/ is outside this folder: make its imports of React and TanStack
    // Query find the copies installed here.
    dedupe: ["react", "react-dom", "@tanstack/react-query"],
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.{ts,tsx}"],
    setupFiles: ["test/setup.ts"],
  },
});
