"use client";

export interface ModelDeprecationWarningProps {
  modelId: string;
  modelName?: string;
  deprecationDate?: string | null;
  sunsetDate?: string | null;
  replacementModelId?: string | null;
  replacementModelName?: string | null;
  /** Shows a button to switch to the replacement. */
  onSelectReplacement?: (replacementModelId: string) => void;
  /** "Today", for the days-to-sunset count (defaults to now). */
  now?: Date;
  className?: string;
}

const DAY = 86_400_000;

function daysUntil(date: string, now: Date): number | null {
  const at = Date.parse(`${date}T00:00:00Z`);
  if (Number.isNaN(at)) return null;
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Math.round((at - today) / DAY);
}

/**
 * Says a model is deprecated, when it stops working and what replaces it.
 * Within 30 days of its sunset it turns urgent (an alert); past it, it says
 * the model is gone.
 */
export function ModelDeprecationWarning({
  modelId,
  modelName,
  deprecationDate,
  sunsetDate,
  replacementModelId,
  replacementModelName,
  onSelectReplacement,
  now = new Date(),
  className,
}: ModelDeprecationWarningProps) {
  const name = modelName ?? modelId;
  const days = sunsetDate ? daysUntil(sunsetDate, now) : null;
  const level = days === null ? "notice" : days < 0 ? "sunset" : days <= 30 ? "urgent" : "notice";
  const replacement = replacementModelName ?? replacementModelId;
  const when =
    days === null
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
