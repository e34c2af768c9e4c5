import { act, render, screen } from "@testing-library/react";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { isLoaded, loadSync } from "provider-sync";
import { ModelDeprecationWarning } from "provider-sync/react";

describe("ModelDeprecationWarning before the wasm", () => {
  it("renders nothing, then the warning once the wasm loads", () => {
    expect(isLoaded()).toBe(false);
    render(<ModelDeprecationWarning modelId="old" sunsetDate="2026-12-01" now={new Date("2026-11-25T12:00:00Z")} />);
    expect(screen.queryByRole("alert")).toBeNull();
    act(() => loadSync(readFileSync(resolve("../pkg/provider_sync_sdk_bg.wasm"))));
    // Six days left: urgent, by the wasm's rule.
    expect(screen.getByRole("alert").textContent).toContain("in 6 days");
  });
});
