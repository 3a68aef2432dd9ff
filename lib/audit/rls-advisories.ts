/**
 * Known PostgreSQL vulnerabilities that break row-level security or leak rows it hides, and the
 * minor release that fixed each on every branch. A pure table: `tenancy audit` compares the live
 * server's `server_version_num` against it; tests pin it row by row.
 *
 * Reading a row: on a branch listed in `fixed`, releases before that minor are vulnerable; a branch
 * newer than every listed one shipped with the fix; a branch at or after `introduced` but missing
 * from `fixed` never got a fix (end of life), so it is vulnerable.
 */

export interface Advisory {
  /** CVE id, or a short name when the notes carry none. */
  id: string;
  summary: string;
  /** First affected major (9.5 is when RLS arrived); 0 when every older release is affected. */
  introduced: number;
  /** Fixed minor per major, e.g. { "15": 9 } = fixed in 15.9. */
  fixed: Record<string, number>;
  /** Something beyond upgrading the binaries is needed on existing clusters. */
  note?: string;
}

export const RLS_ADVISORIES: readonly Advisory[] = [
  {
    id: "CVE-2016-2193",
    summary: "cached plans kept the row-security status of the role that planned them (a session switching roles could bypass RLS)",
    introduced: 9.5,
    fixed: { "9.5": 2 },
  },
  {
    id: "CVE-2017-7484",
    summary: "planner selectivity estimators ran leaky operators over pg_statistic values the user could not read",
    introduced: 0,
    fixed: { "9.2": 21, "9.3": 17, "9.4": 12, "9.5": 7, "9.6": 3 },
  },
  {
    id: "CVE-2017-15099",
    summary: "INSERT ... ON CONFLICT DO UPDATE disclosed rows the invoker could not read, bypassing RLS",
    introduced: 9.5,
    fixed: { "9.5": 10, "9.6": 6, "10": 1 },
  },
  {
    id: "CVE-2019-10130",
    summary: "selectivity estimators applied leaky operators to statistics of rows hidden by RLS (most common values)",
    introduced: 9.5,
    fixed: { "9.5": 17, "9.6": 13, "10": 8, "11": 3 },
  },
  {
    id: "CVE-2023-2455",
    summary: "row security policies disregarded user ID changes after inlining (a plan made for one role reused by another)",
    introduced: 9.5,
    fixed: { "11": 20, "12": 15, "13": 11, "14": 8, "15": 3 },
  },
  {
    id: "CVE-2024-4317",
    summary: "pg_stats_ext and pg_stats_ext_exprs showed statistics (most common values) of columns the user could not read",
    introduced: 14,
    fixed: { "14": 12, "15": 7, "16": 3 },
    note: "clusters initialised before the fix also need share/fix-CVE-2024-4317.sql run in every database (the audit checks the view separately)",
  },
  {
    id: "CVE-2024-10976",
    summary: "row security below subqueries and in cached plans disregarded user ID changes (SET ROLE, SECURITY DEFINER)",
    introduced: 9.5,
    fixed: { "12": 21, "13": 17, "14": 14, "15": 9, "16": 5, "17": 1 },
  },
  {
    id: "CVE-2024-10978",
    summary: "SET ROLE / SET SESSION AUTHORIZATION could reset to the wrong user ID, evaluating policies as another role",
    introduced: 0,
    fixed: { "12": 21, "13": 17, "14": 14, "15": 9, "16": 5, "17": 1 },
  },
  {
    id: "CVE-2025-8713",
    summary: "optimizer statistics exposed sampled data hidden by RLS in partitioning or inheritance hierarchies",
    introduced: 0,
    fixed: { "13": 22, "14": 19, "15": 14, "16": 10, "17": 6 },
  },
  {
    id: "ON-CONFLICT-DO-UPDATE-RLS",
    summary:
      "INSERT ... ON CONFLICT DO UPDATE ... WHERE <predicate on the existing row> evaluated the predicate on another tenant's row " +
      "(reproduced on 15.18; no CVE id recorded in our notes)",
    introduced: 9.5,
    fixed: { "15": 20, "16": 16, "17": 12, "18": 7 },
    note: "reported fixed in 15.20, 16.16, 17.12 and 18.7; no fixed release is known for older branches",
  },
];

export interface ServerVersion {
  /** 15 for 15.x; 9.6 for 9.6.x. */
  major: number;
  minor: number;
  /** "15.20", "9.6.24". */
  text: string;
}

/** Parses `server_version_num` (150020 → 15.20, 90624 → 9.6.24). */
export function parseServerVersionNum(num: number): ServerVersion {
  if (!Number.isInteger(num) || num < 80000) throw new Error(`not a server_version_num: ${num}`);
  if (num >= 100000) {
    const major = Math.floor(num / 10000);
    const minor = num % 10000;
    return { major, minor, text: `${major}.${minor}` };
  }
  const first = Math.floor(num / 10000);
  const second = Math.floor(num / 100) % 100;
  const minor = num % 100;
  return { major: Number(`${first}.${second}`), minor, text: `${first}.${second}.${minor}` };
}

/** The release that fixed `advisory` on the server's branch, or undefined when the branch never got one. */
export function fixedRelease(advisory: Advisory, major: number): string | undefined {
  const minor = advisory.fixed[String(major)];
  return minor === undefined ? undefined : `${major}.${minor}`;
}

/** Whether a server of this version is exposed to `advisory`. */
export function isVulnerable(advisory: Advisory, version: ServerVersion): boolean {
  if (version.major < advisory.introduced) return false;
  const fixedMinor = advisory.fixed[String(version.major)];
  if (fixedMinor !== undefined) return version.minor < fixedMinor;
  const newestFixedBranch = Math.max(...Object.keys(advisory.fixed).map(Number));
  return version.major < newestFixedBranch; // an older, unfixed (end-of-life) branch
}

/** The advisories a server with this `server_version_num` is exposed to. */
export function unfixedAdvisories(serverVersionNum: number, advisories: readonly Advisory[] = RLS_ADVISORIES): Advisory[] {
  const version = parseServerVersionNum(serverVersionNum);
  return advisories.filter((a) => isVulnerable(a, version));
}
