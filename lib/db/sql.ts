/**
 * The three kinds of SQL text, kept apart:
 *  - identifiers: only through `ident()`/`qualified()`, which check an allow-list pattern and quote;
 *  - values: always `$n` parameters, never interpolated;
 *  - trusted fragments: SQL written in this repository (catalogue column types, defaults, checks).
 *    They are plain strings that come from source code only; no user input reaches them.
 */
import pg from "pg";

/** Lower-case SQL identifiers we create or accept: letters, digits, underscore, at most 63 bytes. */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export class InvalidIdentifierError extends Error {
  constructor(readonly identifier: string) {
    super(`invalid SQL identifier ${JSON.stringify(identifier)}: expected ${IDENTIFIER_PATTERN}`);
    this.name = "InvalidIdentifierError";
  }
}

/** A checked, quoted identifier: `ident("trades")` → `"trades"`. Throws on anything outside the allow-list. */
export function ident(name: string): string {
  if (!IDENTIFIER_PATTERN.test(name)) throw new InvalidIdentifierError(name);
  return pg.escapeIdentifier(name);
}

/** A checked, quoted schema-qualified name: `qualified("shared", "trades")` → `"shared"."trades"`. */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** A string literal for the few places PostgreSQL takes no parameter (DDL such as COMMENT, role passwords). */
export function literal(value: string): string {
  return pg.escapeLiteral(value);
}
