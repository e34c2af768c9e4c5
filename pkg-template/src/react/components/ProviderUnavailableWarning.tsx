"use client";

import type { ProviderStatus } from "../../index.js";

export interface ProviderUnavailableWarningProps {
  providerId: string;
  providerName?: string | undefined;
  status: ProviderStatus;
  /** Why, from the provider's health. */
  message?: string | null | undefined;
  fallbackProviderId?: string | null | undefined;
  fallbackProviderName?: string | null | undefined;
  /** Shows a button to switch to the fallback. */
  onSelectFallback?: ((fallbackProviderId: string) => void) | undefined;
  className?: string | undefined;
}

const PHRASES: Record<ProviderStatus, string> = {
  available: "is available",
  degraded: "is degraded: requests may be slow or fail",
  unavailable: "is unavailable",
  maintenance: "is down for maintenance",
  unknown: "has an unknown status",
};

/** Says a provider cannot be relied on and offers its fallback. Renders
 * nothing while the provider is available. */
export function ProviderUnavailableWarning({
  providerId,
  providerName,
  status,
  message,
  fallbackProviderId,
  fallbackProviderName,
  onSelectFallback,
  className,
}: ProviderUnavailableWarningProps) {
  if (status === "available") return null;
  const fallback = fallbackProviderName ?? fallbackProviderId;
  return (
    <div
      role="alert"
      className={["psync-provider-warning", `psync-provider-warning--${status}`, className].filter(Boolean).join(" ")}
      data-provider-id={providerId}
    >
      <strong>
        {providerName ?? providerId} {PHRASES[status]}.
      </strong>
      {message && <p className="psync-provider-warning__message">{message}</p>}
      {fallback && <p>Suggested fallback: {fallback}.</p>}
      {fallbackProviderId && onSelectFallback && (
        <button type="button" onClick={() => onSelectFallback(fallbackProviderId)}>
          Switch to {fallback}
        </button>
      )}
    </div>
  );
}
