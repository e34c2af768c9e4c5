// @vitest-environment node
import { renderToString } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ProviderSyncProvider, SyncStatusIndicator, useProviderSync } from "provider-sync/react";
import { FakeService, provider } from "./fake-service";

function Status() {
  const { status, providers } = useProviderSync();
  return (
    <>
      <SyncStatusIndicator status={status} />
      <span>{providers.length} providers</span>
    </>
  );
}

describe("server rendering", () => {
  it("renders the empty snapshot without touching window", () => {
    expect(typeof window).toBe("undefined");
    const service = new FakeService({ providers: [provider("p")] });
    const html = renderToString(
      <ProviderSyncProvider service={service}>
        <Status />
      </ProviderSyncProvider>,
    );
    expect(html).toContain("Syncing");
    expect(html).toContain("0<!-- --> providers");
  });
});
