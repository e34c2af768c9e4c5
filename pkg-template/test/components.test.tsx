import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadSync } from "provider-sync";
import { ModelDeprecationWarning, ProviderUnavailableWarning, SyncStatusIndicator } from "provider-sync/react";

// The deprecation warning asks the wasm how urgent a sunset is.
loadSync(readFileSync(resolve("../pkg/provider_sync_sdk_bg.wasm")));

describe("SyncStatusIndicator", () => {
  it("announces the status politely and offers a sync", () => {
    const onSync = vi.fn();
    render(<SyncStatusIndicator status="synced" isConnected version={42} lastSyncTime={new Date(0)} onSync={onSync} showDetails />);
    const status = screen.getByRole("status");
    expect(status.getAttribute("aria-live")).toBe("polite");
    expect(status.textContent).toContain("Synced");
    expect(screen.getByText("42")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Sync now" }));
    expect(onSync).toHaveBeenCalledOnce();
  });

  it("keeps a failed sync to the status it shows: no unhandled rejection", async () => {
    const unhandled = vi.fn();
    process.on("unhandledRejection", unhandled);
    try {
      render(<SyncStatusIndicator status="disconnected" onSync={() => Promise.reject(new Error("POST /sync failed"))} />);
      fireEvent.click(screen.getByRole("button", { name: "Sync now" }));
      await new Promise((ok) => setTimeout(ok, 20));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off("unhandledRejection", unhandled);
    }
  });

  it("without a status, inside a provider, shows the provider's (2026-12-02)", async () => {
    const { FakeService } = await import("./fake-service");
    const { ProviderSyncProvider } = await import("provider-sync/react");
    const { act } = await import("@testing-library/react");
    const service = new FakeService({ status: "error", isConnected: false, epoch: null });
    render(
      <ProviderSyncProvider service={service}>
        <SyncStatusIndicator />
      </ProviderSyncProvider>,
    );
    // It said "Synced" for a catalog that failed to load.
    expect(screen.getByRole("status").textContent).toContain("Sync error");
    act(() => service.update({ status: "stale", isConnected: true, epoch: "e1" }));
    expect(screen.getByRole("status").textContent).toContain("Showing cached data");
    act(() => service.update({ status: "synced", transport: "polling" }));
    expect(screen.getByRole("status").textContent).toContain("Synced (polling)");
  });

  it("inside a provider, its details are the provider's too (2026-12-04)", async () => {
    const { FakeService } = await import("./fake-service");
    const { ProviderSyncProvider } = await import("provider-sync/react");
    const service = new FakeService({ version: 7, lastSyncTime: 1_700_000_000_000 });
    const { container } = render(
      <ProviderSyncProvider service={service}>
        <SyncStatusIndicator showDetails />
      </ProviderSyncProvider>,
    );
    // A black-box check saw "Synced · Transport websocket · Last sync never".
    const details = container.querySelector(".psync-status__details")!.textContent!;
    expect(details).not.toContain("never");
    expect(details).toContain(new Date(1_700_000_000_000).toLocaleTimeString());
    expect(details).toContain("Version7");
  });

  it("shows a disconnected or polling link", () => {
    const { rerender } = render(<SyncStatusIndicator isConnected={false} />);
    expect(screen.getByRole("status").textContent).toContain("Disconnected");
    rerender(<SyncStatusIndicator status="synced" transport="polling" isConnected />);
    expect(screen.getByRole("status").textContent).toContain("polling");
  });

  it("outside a provider, with nothing to show, throws rather than saying Synced", () => {
    // A black-box check saw "Synced" from a bare <SyncStatusIndicator />.
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      expect(() => render(<SyncStatusIndicator />)).toThrow(/inside <ProviderSyncProvider>/);
      expect(() => render(<SyncStatusIndicator showDetails onSync={() => {}} />)).toThrow(/`isConnected`/);
    } finally {
      quiet.mockRestore();
    }
    render(<SyncStatusIndicator isConnected />);
    expect(screen.getByRole("status").textContent).toContain("Synced");
  });
});

describe("ModelDeprecationWarning", () => {
  const now = new Date("2026-11-25T12:00:00Z");

  it("is a note while the sunset is far, and offers the replacement", () => {
    const onSelect = vi.fn();
    render(
      <ModelDeprecationWarning modelId="old" modelName="Old" deprecationDate="2026-10-01" sunsetDate="2027-04-01"
        replacementModelId="new" replacementModelName="New" onSelectReplacement={onSelect} now={now} />,
    );
    const note = screen.getByRole("note");
    expect(note.className).toContain("psync-deprecation--notice");
    expect(note.textContent).toContain("in 127 days");
    fireEvent.click(screen.getByRole("button", { name: "Switch to New" }));
    expect(onSelect).toHaveBeenCalledWith("new");
  });

  it("turns into an alert near the sunset and after it", () => {
    const { rerender } = render(<ModelDeprecationWarning modelId="old" sunsetDate="2026-12-05" now={now} />);
    expect(screen.getByRole("alert").className).toContain("psync-deprecation--urgent");
    rerender(<ModelDeprecationWarning modelId="old" sunsetDate="2026-11-01" now={now} />);
    expect(screen.getByRole("alert").textContent).toContain("stopped working on 2026-11-01");
    expect(screen.getByRole("alert").textContent).toContain("old has been retired");
  });
});

describe("ModelDeprecationWarning of a retired model", () => {
  it("says a sunset model is retired, whatever its date", () => {
    const now = new Date("2026-11-25T12:00:00Z");
    const { rerender } = render(
      <ModelDeprecationWarning modelId="old" sunsetDate="2027-06-01" deprecationStatus="sunset" now={now} />,
    );
    const alert = screen.getByRole("alert");
    expect(alert.className).toContain("psync-deprecation--sunset");
    expect(alert.textContent).toContain("old has been retired");
    expect(alert.textContent).toContain("It no longer works.");
    rerender(<ModelDeprecationWarning modelId="old" deprecationStatus="sunset" now={now} />);
    expect(screen.getByRole("alert").textContent).toContain("It no longer works.");
    rerender(<ModelDeprecationWarning modelId="old" sunsetDate="2027-06-01" deprecationStatus="deprecated" now={now} />);
    expect(screen.getByRole("note").textContent).toContain("in 188 days");
  });
});

describe("ModelDeprecationWarning with a date it cannot read", () => {
  it("shows the date as given, without a countdown, and warns; an empty one is no date", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const now = new Date("2026-11-25T12:00:00Z");
    const { rerender } = render(<ModelDeprecationWarning modelId="old" sunsetDate="next spring" now={now} />);
    expect(screen.getByRole("note").textContent).toContain("It stops working on next spring.");
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("sunsetDate must be a YYYY-MM-DD date"));
    rerender(<ModelDeprecationWarning modelId="old" sunsetDate="2027-06-01" now={new Date(NaN)} />);
    expect(screen.getByRole("note").textContent).toContain("It stops working on 2027-06-01.");
    rerender(<ModelDeprecationWarning modelId="old" sunsetDate="" now={now} />);
    expect(screen.getByRole("note").textContent).toContain("No shutdown date has been announced.");
    // A status that is no string (an untyped caller's) is refused: with no
    // date, none is shown ("undefined" was).
    rerender(<ModelDeprecationWarning modelId="old" deprecationStatus={5 as never} now={now} />);
    expect(screen.getByRole("note").textContent).toContain("No shutdown date has been announced.");
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("deprecationStatus a string or null"));
    warn.mockRestore();
  });
});

describe("ProviderUnavailableWarning", () => {
  it("renders nothing while the provider is available", () => {
    const { container } = render(<ProviderUnavailableWarning providerId="p" status="available" />);
    expect(container.innerHTML).toBe("");
  });

  it("alerts and offers the fallback", () => {
    const onSelect = vi.fn();
    render(
      <ProviderUnavailableWarning providerId="openai" providerName="OpenAI" status="unavailable" message="outage"
        fallbackProviderId="anthropic" fallbackProviderName="Anthropic" onSelectFallback={onSelect} />,
    );
    expect(screen.getByRole("alert").textContent).toContain("OpenAI is unavailable");
    fireEvent.click(screen.getByRole("button", { name: "Switch to Anthropic" }));
    expect(onSelect).toHaveBeenCalledWith("anthropic");
  });
});
