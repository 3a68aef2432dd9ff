/**
 * Validating command-line input before anything runs: every helper throws a UsageError naming the
 * argument or flag (exit 2), so a command parses all of its input first and touches nothing when
 * any of it is wrong.
 */
import type { z } from "zod";
import { UsageError } from "./output";
import type { CommandContext } from "./command";

/** Exactly these positional arguments, in order (names as in the usage line, e.g. "slug"). */
export function positionals<const N extends readonly string[]>(ctx: Pick<CommandContext, "args">, names: N): Record<N[number], string> {
  const missing = names[ctx.args.length];
  if (missing !== undefined) throw new UsageError(`missing <${missing}>`, missing);
  if (ctx.args.length > names.length) {
    throw new UsageError(
      `unexpected argument${ctx.args.length - names.length > 1 ? "s" : ""} ${ctx.args
        .slice(names.length)
        .map((a) => JSON.stringify(a))
        .join(" ")}`,
      "arguments",
    );
  }
  return Object.fromEntries(names.map((n, i) => [n, ctx.args[i]])) as Record<N[number], string>;
}

/** A string flag's value, or undefined when absent. */
export function optionalFlag(ctx: Pick<CommandContext, "flags">, name: string): string | undefined {
  const value = ctx.flags[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new UsageError("expects a value", `--${name}`);
  return value;
}

/** A string flag that must be present. */
export function requiredFlag(ctx: Pick<CommandContext, "flags">, name: string): string {
  const value = optionalFlag(ctx, name);
  if (value === undefined) throw new UsageError("is required", `--${name}`);
  return value;
}

/** Parses `value` with a zod schema; the first issue becomes a UsageError naming `field`. */
export function parseField<S extends z.ZodType>(schema: S, value: unknown, field: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new UsageError(result.error.issues[0]?.message ?? "is invalid", field);
  return result.data;
}

/** A whole number in [min, max], written in plain decimal digits (no 1e3, no 0x10, no 10.0). */
export function parseInteger(value: string, field: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`must be a whole number, got ${JSON.stringify(value)}`, field);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`must be between ${min} and ${max}, got ${value}`, field);
  return n;
}
