// The client before and after its wasm is loaded, with the real wasm (this
// file's module copy starts unloaded: vitest isolates each test file).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ProviderSyncService,
  getProviderSyncService,
  isLoaded,
  loadSync,
  resetProviderSyncService,
  sunsetOutlook,
} from "provider-sync";

const config = { apiBaseUrl: "http://127.0.0.1:9/api/provider-sync", enableCache: false };

describe("the client before load()", () => {
  it("says to load the wasm first, then works as the glue's own class", () => {
    expect(isLoaded()).toBe(false);
    // It was "Cannot read properties of undefined (reading 'Sa')".
    const told = /the wasm is not loaded yet: await load\(\) \(or call loadSync\(\)\) first/;
    expect(() => new ProviderSyncService(config)).toThrow(told);
    expect(() => getProviderSyncService(config)).toThrow(told);
    expect(() => sunsetOutlook("2030-01-01")).toThrow(told);
    expect(() => resetProviderSyncService()).toThrow(told);

    loadSync(readFileSync(resolve("../pkg/provider_sync_sdk_bg.wasm")));
    const service = new ProviderSyncService(config);
    expect(service).toBeInstanceOf(ProviderSyncService);
    expect(service.getProviders()).toEqual([]);
    service.destroy();
    const shared = getProviderSyncService(config);
    expect(shared).toBeInstanceOf(ProviderSyncService);
    expect(getProviderSyncService()).toBe(shared);
    // Another config is not taken by the shared service: said once in the
    // console (it was silent); the same one with a new function is not
    // another.
    const warned: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warned.push(args);
    try {
      expect(getProviderSyncService({ ...config, getToken: () => "t" })).toBe(shared);
      // The same values in another order, and a bootstrap state: not another.
      expect(getProviderSyncService({ enableCache: false, apiBaseUrl: config.apiBaseUrl, bootstrap: undefined })).toBe(shared);
      expect(warned).toEqual([]);
      expect(getProviderSyncService({ ...config, pollingInterval: 5000 })).toBe(shared);
      expect(getProviderSyncService({ ...config, pollingInterval: 6000 })).toBe(shared);
      expect(warned.length).toBe(1);
      expect(String(warned[0][0])).toMatch(/was given another config than the shared service was made with/);
      // Made again after a reset, from the config given then.
      resetProviderSyncService();
      const again = getProviderSyncService({ ...config, pollingInterval: 5000 });
      expect(again).not.toBe(shared);
      expect(getProviderSyncService({ ...config, pollingInterval: 5000 })).toBe(again);
      expect(warned.length).toBe(1);
    } finally {
      console.warn = warn;
    }
    resetProviderSyncService();
    expect(sunsetOutlook("2030-01-01", "deprecated", Date.UTC(2029, 11, 1)).daysUntilSunset).toBe(31);
    // A date that is not one is an error, not "no date" (it was `low`).
    for (const [date, now] of [["2030-13-45", 0], ["soon", 0], ["2030-01-01", NaN]] as const) {
      expect(() => sunsetOutlook(date, "deprecated", now)).toThrow(/sunsetDate must be a YYYY-MM-DD date or null/);
    }
    expect(sunsetOutlook(null, "deprecated", 0)).toEqual({ urgency: "low", daysUntilSunset: null });
    expect(sunsetOutlook(undefined as never, undefined, undefined).daysUntilSunset).toBe(null);
    // A value of the wrong type is refused, not read as none (or as 0).
    for (const args of [[20300101], ["2030-01-01", 1, 0], ["2030-01-01", "deprecated", "0"]]) {
      expect(() => (sunsetOutlook as (...a: unknown[]) => unknown)(...args)).toThrow(
        /sunsetDate must be a YYYY-MM-DD date or null, deprecationStatus a string or null, now a number of ms/,
      );
    }
    // An error of the client's own (a bad config) is passed on as it is.
    expect(() => new ProviderSyncService({ pollingInterval: "soon" } as never)).toThrow(/pollingInterval/);
  });
});
