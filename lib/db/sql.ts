/**
 * The three kinds of SQL text, kept apart:
 *  - identifiers: only through `ident()`/`qualified()`, which check an allow-list pattern and quote;
 *  - values: always `$n` parameters, never interpolated;
 *  - trusted fragments: SQL written in this repository (catalogue column types, defaults, checks,
 *    the tenant predicate). They are `TrustedSql`, which only `unsafeSql()` makes: `grep -rn
 *    "unsafeSql("` lists every place raw SQL text enters (porsager/postgres's `sql.unsafe`).
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

declare const trusted: unique symbol;

/**
 * SQL text that goes into a statement as it is, unquoted: a column type, a default, a CHECK
 * expression. At run time a plain string (JSON, Pulumi state and rendered SQL are unchanged); the
 * type only says it came through `unsafeSql()`.
 */
export type TrustedSql = string & { readonly [trusted]: true };

/**
 * Marks `text` as SQL to be used verbatim. The one door for raw SQL fragments, and named to stand
 * out in review: only text written in this repository (or picked from an allow-list) may pass it,
 * never a value from input — values are `$n` parameters and names go through `ident()`.
 */
export function unsafeSql(text: string): TrustedSql {
  return text as TrustedSql;
}
