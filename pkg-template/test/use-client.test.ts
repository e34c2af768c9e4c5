// @vitest-environment node
// Next.js (React Server Components) needs "use client" at the top of the
// modules that define hooks, context or interactive components, and of the
// entries a server file imports. Checked on the built files, as shipped.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = fileURLToPath(new URL("../../pkg/", import.meta.url));

function modules(folder: string): string[] {
  return readdirSync(join(pkg, folder), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".js"))
    .map((name) => join(folder, name));
}

/** The first statement is the directive (comments may come before it). */
function startsWithUseClient(source: string): boolean {
  const code = source.replace(/^(\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*/, "");
  return /^(["'])use client\1;?/.test(code);
}

/** Exports a hook (`useX`) or a component (`X`). */
function definesHookOrComponent(source: string): boolean {
  return /^export (async )?function (use[A-Z]|[A-Z])/m.test(source);
}

describe('"use client"', () => {
  const all = [...modules("react"), ...modules("react-query")];

  it("opens both React entries", () => {
    for (const entry of ["react/index.js", "react-query/index.js"]) {
      expect(startsWithUseClient(readFileSync(join(pkg, entry), "utf8")), entry).toBe(true);
    }
  });

  it("opens every module that defines a hook or a component", () => {
    const needing = all.filter((file) => definesHookOrComponent(readFileSync(join(pkg, file), "utf8")));
    // The scan finds what it should (not vacuous).
    expect(needing).toEqual(
      expect.arrayContaining([
        "react/context.js",
        "react/store.js",
        "react/useModel.js",
        "react/components/SyncStatusIndicator.js",
        "react-query/hooks.js",
      ]),
    );
    const missing = needing.filter((file) => !startsWithUseClient(readFileSync(join(pkg, file), "utf8")));
    expect(missing).toEqual([]);
  });
});
