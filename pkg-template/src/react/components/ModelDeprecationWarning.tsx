"use client";

import { useSyncExternalStore } from "react";
import { isLoaded, onLoaded, sunsetOutlook, type DeprecationStatus, type SunsetOutlook } from "../../index.js";

export interface ModelDeprecationWarningProps {
  modelId: string;
  modelName?: string | undefined;
  deprecationDate?: string | null | undefined;
  sunsetDate?: string | null | undefined;
  /** The model's `deprecation_status` (default `deprecated`): a `sunset`
   * model has been retired whatever its date says. */
  deprecationStatus?: DeprecationStatus | null | undefined;
  replacementModelId?: string | null | undefined;
  replacementModelName?: string | null | undefined;
  /** Shows a button to switch to the replacement. */
  onSelectReplacement?: ((replacementModelId: string) => void) | undefined;
  /** "Today", for the days-to-sunset count (defaults to now). */
  now?: Date | undefined;
  className?: string | undefined;
}

/**
 * Says a model is deprecated, when it stops working and what replaces it.
 * How urgent is the server's rule, from the wasm (`sunsetOutlook`): within
 * 30 days of its sunset (`high` or `critical`) it turns urgent (an alert);
 * past it, it says the model is gone. Renders nothing until the wasm is
 * loaded (inside a `ProviderSyncProvider` it is, once there is data), and
 * renders when it is.
 */
export function ModelDeprecationWarning({
  modelId,
  modelName,
  deprecationDate,
  sunsetDate,
  deprecationStatus,
  replacementModelId,
  replacementModelName,
  onSelectReplacement,
  now,
  className,
}: ModelDeprecationWarningProps) {
  const ready = useSyncExternalStore(onLoaded, isLoaded, isLoaded);
  if (!ready) return null;
  const name = modelName ?? modelId;
  // A date `sunsetOutlook` cannot read (not YYYY-MM-DD, or an invalid
  // `now` or status) is shown as given, without a countdown, and said on the console:
  // a warning that takes the page down with it helps no one.
  let outlook: SunsetOutlook;
  let unread = false;
  try {
    outlook = sunsetOutlook(sunsetDate || null, deprecationStatus ?? "deprecated", now?.getTime());
  } catch (error) {
    unread = true;
    outlook = { urgency: "low", daysUntilSunset: null };
    console.warn(`ModelDeprecationWarning (${modelId}): ${error instanceof Error ? error.message : String(error)}`);
  }
  const { urgency, daysUntilSunset: days } = outlook;
  const level = urgency === "sunset" ? "sunset" : urgency === "high" || urgency === "critical" ? "urgent" : "notice";
  const replacement = replacementModelName ?? replacementModelId;
  // Without a date (a refusal of another argument, such as a status that
  // is no string), there is none to show.
  const when = unread && sunsetDate
    ? `It stops working on ${sunsetDate}.`
    : level === "sunset" && (days === null || days >= 0)
      ? "It no longer works."
      : days === null
      ? "No shutdown date has been announced."
      : days < 0
        ? `It stopped working on ${sunsetDate}.`
        : days === 0
          ? "It stops working today."
          : `It stops working on ${sunsetDate} (in ${days} day${days === 1 ? "" : "s"}).`;
  return (
    <div
      role={level === "notice" ? "note" : "alert"}
      className={["psync-deprecation", `psync-deprecation--${level}`, className].filter(Boolean).join(" ")}
      data-model-id={modelId}
    >
      <strong className="psync-deprecation__title">
        {name} {level === "sunset" ? "has been retired" : "is deprecated"}
      </strong>
      {deprecationDate && <span className="psync-deprecation__since"> (since {deprecationDate})</span>}
      <p className="psync-deprecation__when">{when}</p>
      {replacement && <p className="psync-deprecation__replacement">Use {replacement} instead.</p>}
      {replacementModelId && onSelectReplacement && (
        <button type="button" onClick={() => onSelectReplacement(replacementModelId)}>
          Switch to {replacement}
        </button>
      )}
    </div>
  );
}
