/**
 * Settings of a running local cluster that can change without a restart. startPostgres writes its
 * settings into postgresql.conf when it creates a cluster; a cluster created before a setting was
 * added (or changed) keeps the old value. `ensureReloadableSettings` converges such a cluster with
 * ALTER SYSTEM and a reload: the server keeps running, its sessions keep their connections, and a
 * second call finds nothing to do. Settings that need a restart are refused, not applied.
 */
import { withConnection } from "../db/client";
import { ident, literal } from "../db/sql";

export class UnreloadableSettingError extends Error {
  constructor(readonly setting: string) {
    super(`setting "${setting}" needs a server restart (context postmaster); ensureReloadableSettings only reloads`);
    this.name = "UnreloadableSettingError";
  }
}

export interface CurrentSetting {
  name: string;
  /** pg_settings.setting: in the setting's base unit, e.g. milliseconds for log_min_duration_statement. */
  setting: string;
  context: string;
}

/**
 * The settings that differ from `wanted` (pure). Numbers are compared in the setting's base unit,
 * so pass log_min_duration_statement in milliseconds; strings are compared as PostgreSQL stores them.
 */
export function settingsToChange(current: readonly CurrentSetting[], wanted: Readonly<Record<string, string | number>>): string[] {
  const byName = new Map(current.map((c) => [c.name, c]));
  const out: string[] = [];
  for (const [name, value] of Object.entries(wanted)) {
    const c = byName.get(name);
    if (!c) throw new Error(`unknown setting "${name}"`);
    const same = typeof value === "number" ? Number(c.setting) === value : c.setting === value;
    if (same) continue;
    if (c.context === "postmaster" || c.context === "internal") throw new UnreloadableSettingError(name);
    out.push(name);
  }
  return out;
}

/** Brings `wanted` about on the running server (ALTER SYSTEM, pg_reload_conf); returns the names it changed. Superuser URL. */
export async function ensureReloadableSettings(url: string, wanted: Readonly<Record<string, string | number>>): Promise<string[]> {
  return withConnection(
    url,
    async (client) => {
      const read = async () =>
        (await client.query<CurrentSetting>("SELECT name, setting, context FROM pg_settings WHERE name = ANY($1)", [Object.keys(wanted)]))
          .rows;
      const changes = settingsToChange(await read(), wanted);
      if (!changes.length) return [];
      // ALTER SYSTEM takes no parameters: the name through ident(), the value as a literal.
      for (const name of changes) {
        const value = wanted[name];
        await client.query(`ALTER SYSTEM SET ${ident(name)} = ${typeof value === "number" ? String(value) : literal(value)}`);
      }
      await client.query("SELECT pg_reload_conf()");
      // The reload is asynchronous: wait until this session sees the new values.
      const deadline = Date.now() + 10_000;
      while (settingsToChange(await read(), wanted).length) {
        if (Date.now() > deadline) throw new Error(`settings ${changes.join(", ")} did not take effect after a reload`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return changes;
    },
    { application_name: "alphapulse-local" },
  );
}
