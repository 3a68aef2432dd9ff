/** parseSlowLog over PostgreSQL's jsonlog (what the AWS nodes ship to CloudWatch), next to the text format. */
import { describe, expect, it } from "vitest";
import { parseSlowLog, summariseSlow } from "../../lib/observability/slow-log";

const record = (over: Record<string, unknown>) =>
  JSON.stringify({
    timestamp: "2026-11-26 11:21:21.045 UTC",
    user: "app_user",
    dbname: "alphapulse",
    pid: 25032,
    error_severity: "LOG",
    message: "duration: 300.5 ms  statement: select 1",
    application_name: "tenant:abc123",
    backend_type: "client backend",
    ...over,
  });

describe("parseSlowLog, jsonlog", () => {
  it("reads tenant-tagged duration records, multi-line statements included", () => {
    const text = [
      record({}),
      record({
        message: "duration: 1000.25 ms  execute <unnamed>: select pg_sleep($1)\n  from x",
        timestamp: "2026-11-26 11:21:22.000 UTC",
      }),
      record({ application_name: "psql" }),
      record({ application_name: undefined }),
      record({ error_severity: "ERROR", message: "canceling statement due to statement timeout" }),
      record({ message: "duration: 0.3 ms  parse <unnamed>: select 1" }),
      "{not json",
      "2026-11-26 11:21:23.000 UTC [25033] app=tenant:def456 LOG:  duration: 250 ms  statement: select 2",
    ].join("\n");
    expect(parseSlowLog(text)).toEqual([
      { at: new Date("2026-11-26T11:21:21.045Z"), tag: "abc123", durationMs: 300.5, statement: "select 1" },
      { at: new Date("2026-11-26T11:21:22.000Z"), tag: "abc123", durationMs: 1000.25, statement: "select pg_sleep($1)\n  from x" },
      { at: new Date("2026-11-26T11:21:23.000Z"), tag: "def456", durationMs: 250, statement: "select 2" },
    ]);
    expect(summariseSlow(parseSlowLog(text), new Date(0), new Map([["abc123", "acme"]]))[0]).toMatchObject({
      tenant: "acme",
      count: 2,
      topStatements: [
        { statement: "select pg_sleep($?) from x", count: 1, totalMs: 1000.3 },
        { statement: "select ?", count: 1, totalMs: 300.5 },
      ],
    });
  });

  it("reads a numeric zone offset", () => {
    expect(parseSlowLog(record({ timestamp: "2026-11-26 12:21:21.045 +01" }))[0].at).toEqual(new Date("2026-11-26T11:21:21.045Z"));
  });
});
