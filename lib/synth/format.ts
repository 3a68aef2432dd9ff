/**
 * The synth document's text conventions, without any Pulumi import (the synth CLI reads stack files
 * and parses arguments before it loads the Pulumi runtime).
 */

/** What a secret value becomes in the synth JSON. */
export const REDACTED = "[secret]";

/** JSON with object keys sorted at every level: byte-identical output for identical graphs. */
export function stableStringify(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2) + "\n";
}
