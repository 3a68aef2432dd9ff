/**
 * `tenancy context-key install|retire|list`: the region's tenant-context keys (ADR-005,
 * lib/tenant-context/keys.ts). The secret is read from an environment variable, never from the
 * command line (it would land in shell history and the process list).
 */
import { installContextKey, listContextKeys, retireContextKey, ContextKeyError } from "../../lib/tenant-context/keys";
import { KEY_ID_PATTERN } from "../../lib/tenant-context/proof";
import { positionals, requiredFlag } from "../args";
import { CONNECTION_OPTIONS, withConnection } from "../connection";
import { table, UsageError } from "../output";
import type { Command } from "../command";

const kidOf = (value: string) => {
  if (!KEY_ID_PATTERN.test(value)) throw new UsageError("must be 1-32 characters of a-z, 0-9, _ and -", "kid");
  return value;
};

export const contextKeyInstallCommand: Command = {
  words: ["context-key", "install"],
  summary: "install (or re-activate) a tenant-context key; the secret comes from an environment variable",
  usage: "context-key install <kid> --region eu|us --secret-env NAME",
  options: { ...CONNECTION_OPTIONS, region: { type: "string" }, "secret-env": { type: "string" } },
  async run(ctx) {
    const { kid } = positionals(ctx, ["kid"]);
    const region = requiredFlag(ctx, "region");
    const name = requiredFlag(ctx, "secret-env");
    const secret = process.env[name];
    if (!secret) throw new UsageError(`environment variable ${name} is not set`, "--secret-env");
    const result = await withConnection(ctx, async (client) => {
      try {
        return await installContextKey(client, { kid: kidOf(kid), region, secret });
      } catch (err) {
        if (err instanceof ContextKeyError)
          throw new UsageError(err.reason, { secret: "--secret-env", region: "--region" }[err.field] ?? err.field);
        throw err;
      }
    });
    ctx.out.result(result, () => `context key ${result.kid} ${result.installed ? "installed" : "re-activated"}`);
  },
};

export const contextKeyRetireCommand: Command = {
  words: ["context-key", "retire"],
  summary: "retire a tenant-context key: proofs signed with it are refused from the next transaction on",
  usage: "context-key retire <kid>",
  options: { ...CONNECTION_OPTIONS },
  async run(ctx) {
    const { kid } = positionals(ctx, ["kid"]);
    const retired = await withConnection(ctx, async (client) => {
      try {
        return await retireContextKey(client, kidOf(kid));
      } catch (err) {
        if (err instanceof ContextKeyError) throw new UsageError(err.reason, "kid");
        throw err;
      }
    });
    ctx.out.result({ kid, retired }, () => (retired ? `context key ${kid} retired` : `context key ${kid} was not active: nothing changed`));
  },
};

export const contextKeyListCommand: Command = {
  words: ["context-key", "list"],
  summary: "list the tenant-context keys (ids and states, never secrets)",
  usage: "context-key list",
  options: { ...CONNECTION_OPTIONS },
  async run(ctx) {
    positionals(ctx, []);
    const keys = await withConnection(ctx, (client) => listContextKeys(client));
    ctx.out.result({ keys }, () =>
      table(
        ["kid", "region", "state"],
        keys.map((k) => [k.kid, k.region, k.state]),
      ),
    );
  },
};
