/**
 * What the `check` of every resource that lives inside a tenant database refuses, so that `pulumi
 * preview` fails with the reason instead of planning a replacement that would move, re-register or
 * demote tenant data (docs/data-safety.md). Plain functions that capture nothing at module level:
 * they are serialized with the providers that call them (see ./provider-runtime.ts).
 *
 *   objectMoveProblem   pure: another server, another database, or another tenant for the same object
 *   recreationFailure   asks the database: a new `databaseOid` is accepted only when the database
 *                       really was recreated (lib/tenant/stack-guards.ts databaseRecreationProblem)
 */
import { callDatabase, describeConnection, isMissingDatabase, sameServer, type DatabaseConnection } from "./provider-runtime";

/** A check failure: the property and the reason (what the engine prints). */
export interface CheckProblem {
  property: string;
  reason: string;
}

/** The placeholder the engine passes for an input not known yet (a preview of a resource being created). */
export function isUnknown(value: unknown): boolean {
  return value === "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
}

interface InDatabase {
  connection: DatabaseConnection;
  database: string;
  databaseOid: number;
  tenantId?: string;
}

/**
 * Why an object of a tenant (`what`, e.g. `the dedicated schema of tenant <id>`) may not change this
 * way, or undefined. Pure. Another server or database would create it empty elsewhere and remove the
 * one that holds the data; another tenant id in the same database would demote one tenant to
 * graduate another. A tenant id that changes with the database's oid is a recreated database
 * (recreationFailure decides).
 */
export function objectMoveProblem(what: string, olds: Partial<InDatabase>, news: InDatabase): CheckProblem | undefined {
  if (olds.database === undefined) return undefined; // a new resource
  if (olds.connection !== undefined && !isUnknown(news.connection) && !sameServer(olds.connection, news.connection)) {
    return {
      property: "connection",
      reason:
        `${what} lives on ${describeConnection(olds.connection)}, not ${describeConnection(news.connection)}: ` +
        `a stack does not move tenant data between servers. Revert the connection (loopback spellings localhost, 127.0.0.1 and ::1 are one server)`,
    };
  }
  if (!isUnknown(news.database) && olds.database !== news.database) {
    return {
      property: "database",
      reason: `${what} lives in database "${olds.database}", not "${news.database}": a stack does not move tenant data. Revert the database name`,
    };
  }
  const sameDatabase = Number(olds.databaseOid) === Number(news.databaseOid);
  if (olds.tenantId !== undefined && !isUnknown(news.tenantId) && olds.tenantId !== news.tenantId && sameDatabase) {
    return {
      property: "tenantId",
      reason:
        `${what} belongs to tenant ${olds.tenantId}, not ${news.tenantId}: replacing it would remove one tenant's object to make another's. ` +
        `Revert the tenant; to offboard ${olds.tenantId}, run \`tenancy tenant delete <slug>\``,
    };
  }
  return undefined;
}

/**
 * When `databaseOid` changed: asks the database whether it really was recreated (its oid now is the
 * new one); the reason to refuse otherwise. A database that does not exist (yet) or an oid not known
 * in this preview passes: the Database resource's own create and check decide.
 */
export async function recreationFailure(olds: Partial<InDatabase>, news: InDatabase): Promise<CheckProblem | undefined> {
  if (olds.databaseOid === undefined || isUnknown(news.databaseOid) || isUnknown(news.connection) || isUnknown(news.database))
    return undefined;
  if (Number(olds.databaseOid) === Number(news.databaseOid)) return undefined;
  try {
    const { problem } = await callDatabase(news.connection, news.database, "databaseRecreationProblem", {
      recordedOid: Number(olds.databaseOid),
      newOid: Number(news.databaseOid),
    });
    return problem === null ? undefined : { property: "databaseOid", reason: problem };
  } catch (err) {
    if (isMissingDatabase(err)) return undefined;
    throw err;
  }
}

/** Both checks, the pure one first: the failures `check` returns. */
export async function placementFailures(what: string, olds: Partial<InDatabase>, news: InDatabase): Promise<CheckProblem[]> {
  const moved = objectMoveProblem(what, olds, news);
  if (moved) return [moved];
  const recreated = await recreationFailure(olds, news);
  return recreated ? [recreated] : [];
}
