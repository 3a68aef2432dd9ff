/**
 * `npm run ops` end to end (cli/ops.ts): the stack's platform contract names the executor, the real
 * @aws-sdk/client-lambda invokes the local endpoint that answers like Lambda (SigV4 checked), the
 * real handler runs the `tenancy` operation on a PostgreSQL set up as an AWS node, and ops prints
 * exactly what the local `tenancy` CLI prints, with its exit code. Negative controls: a handler error
 * (X-Amz-Function-Error) fails the command with the handler's message and exit 1; bad input and
 * refused commands exit 2 naming the argument. The same command over a local stack's direct
 * connection prints the same: one code path, two transports.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opsMain, type OpsDependencies } from "../../cli/ops";
import type { OutputSink } from "../../cli/output";
import { runTenancy } from "../../cli/tenancy";
import { withConnection } from "../../lib/db/client";
import { createHandler } from "../../lib/executor/handler";
import { freePort } from "../../lib/local/processes";
import { parsePlatformContract, type PlatformContract } from "../../lib/platform/contract";
import type { PlatformStack } from "../../lib/stack-config/platform-stacks";
import { AWS, LOCAL } from "../platform/fixtures";
import { FUNCTION_NAME, REGION, startExecutorCluster, type ExecutorCluster } from "./support";

const DB = "alphapulse_opscli";

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(): { sink: OutputSink; text: { stdout: string; stderr: string } } {
  const text = { stdout: "", stderr: "" };
  return { text, sink: { stdout: (t) => void (text.stdout += t), stderr: (t) => void (text.stderr += t) } };
}

describe("npm run ops through the executor (real SDK, local Lambda endpoint, real PostgreSQL)", () => {
  let cluster: ExecutorCluster;
  const stacks: PlatformStack[] = [
    { stack: "eu-prod", kind: "aws", region: "eu", environment: "prod" },
    { stack: "local-eu", kind: "local", region: "eu", environment: "local" },
  ];
  const contracts = new Map<string, PlatformContract>();

  async function ops(argv: string[], deps: Partial<OpsDependencies> = {}): Promise<Captured> {
    const { sink, text } = capture();
    const code = await opsMain({
      stacks: () => stacks,
      readContract: (stack) => Promise.resolve(contracts.get(stack)!),
      sink,
      heartbeatMs: 200,
      ...deps,
    })(argv);
    return { code, ...text };
  }

  /** The local CLI on this machine, over a superuser URL: what ops must print. */
  async function local(argv: string[]): Promise<Captured> {
    const { sink, text } = capture();
    const code = await runTenancy([...argv, "--database-url", cluster.superuserUrl(DB)], { sink });
    return { code, ...text };
  }

  const rows = (sql: string, params: unknown[] = []) =>
    withConnection(cluster.superuserUrl(DB), async (c) => (await c.query(sql, params)).rows);

  beforeAll(async () => {
    process.env.EXECUTOR_QUIET = "1";
    cluster = await startExecutorCluster();
    const handler = createHandler(cluster.config);
    cluster.setHandler(handler);
    await handler({ operation: "createDatabase", database: "postgres", args: { name: DB } });
    const executor = {
      kind: "executor" as const,
      functionName: FUNCTION_NAME,
      region: REGION,
      endpoint: cluster.endpoint.url,
      server: "eu-prod/pg",
    };
    contracts.set("eu-prod", parsePlatformContract({ ...AWS, database: { ...AWS.database, name: DB, connection: executor } }, "eu-prod"));
    const direct = { host: "127.0.0.1", port: cluster.server.port, user: "postgres" };
    contracts.set(
      "local-eu",
      parsePlatformContract({ ...LOCAL, database: { ...LOCAL.database, name: DB, connection: direct } }, "local-eu"),
    );
  });
  afterAll(async () => cluster?.stop());

  it("runs tenancy commands inside the executor and prints them as the local CLI does, with progress on stderr", async () => {
    const invokes = cluster.endpoint.requests.invoke;
    const migrated = await ops(["--stack", "eu-prod", "--", "migrate", "--region", "eu"]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).toContain(`invoking ${FUNCTION_NAME} in ${REGION}: tenancy migrate --region eu on database ${DB} of eu-prod…`);
    expect(migrated.stderr).toMatch(/finished in \d+\.\ds \(exit 0\)/);

    const created = await ops(["--stack", "eu-prod", "--", "tenant", "create", "acme-capital", "--tier", "enterprise", "--region", "eu"]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^created tenant acme-capital\n/);
    expect(cluster.endpoint.requests.invoke).toBe(invokes + 2);

    // Byte for byte what `tenancy tenant list` prints here, as text and as JSON.
    const list = await ops(["--stack", "eu-prod", "--", "tenant", "list"]);
    expect(list).toMatchObject({ code: 0, stdout: (await local(["tenant", "list"])).stdout });
    const json = await ops(["--stack", "eu-prod", "--json", "--", "tenant", "list"]);
    expect(json.code).toBe(0);
    expect(json.stdout).toBe((await local(["tenant", "list", "--json"])).stdout);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ slug: "acme-capital" })]);
    expect(json.stderr).toBe(""); // --json keeps stderr quiet, as the CLI does (TENANCY_PROGRESS=1 shows it)
  });

  it("graduates a tenant inside the VPC with one command: the move's progress, then its report", async () => {
    const graduated = await ops(["--stack", "eu-prod", "--", "tenant", "graduate", "acme-capital"]);
    expect(graduated.code, graduated.stderr).toBe(0);
    expect(graduated.stdout).toMatch(/^graduated acme-capital: shared → tenant_[0-9a-f]{32}\n/);
    expect(graduated.stderr).toMatch(/^\[[a-z-]+\] /m);
    expect(await rows("SELECT placement FROM tenancy.tenants WHERE slug = 'acme-capital'")).toEqual([{ placement: "dedicated" }]);
  });

  it("a local stack's direct connection runs the same operation and prints the same", async () => {
    const direct = await ops(["--stack", "local-eu", "--", "tenant", "show", "acme-capital"]);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stderr).toContain(`running on 127.0.0.1:${cluster.server.port} (direct connection)`);
    const viaExecutor = await ops(["--stack", "eu-prod", "--", "tenant", "show", "acme-capital"]);
    expect(viaExecutor.stdout).toBe(direct.stdout);
    expect(direct.stdout).toBe((await local(["tenant", "show", "acme-capital"])).stdout);
  });

  it("bad input to the command is the command's: exit 2 naming the field, nothing written", async () => {
    const human = await ops(["--stack", "eu-prod", "--", "tenant", "create", "Bad_Slug", "--tier", "pro", "--region", "eu"]);
    expect(human.code).toBe(2);
    expect(human.stdout).toBe("");
    expect(human.stderr).toMatch(/^tenancy: slug: /m);
    const json = await ops(["--stack", "eu-prod", "--json", "--", "tenant", "create", "Bad_Slug", "--tier", "pro", "--region", "eu"]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { kind: "usage", field: "slug" } });
    expect(await rows("SELECT count(*)::int AS n FROM tenancy.tenants")).toEqual([{ n: 1 }]);
  });

  it("refuses a command that needs this machine's files, naming the argument and saying why", async () => {
    const refused = await ops(["--stack", "eu-prod", "--", "tenant", "export", "acme-capital", "--out", "acme.json"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^tenancy: --out: not run inside the executor: .*\/tmp/m);
  });

  it("an executor error (X-Amz-Function-Error) fails with the handler's message and exit 1, never silently", async () => {
    const base = contracts.get("eu-prod")!;
    contracts.set("eu-broken", { ...base, stack: "eu-broken", database: { ...base.database, name: "no_such_db" } });
    stacks.push({ stack: "eu-broken", kind: "aws", region: "eu", environment: "prod" });
    const failed = await ops(["--stack", "eu-broken", "--", "tenant", "list"]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe("");
    expect(failed.stderr).toMatch(
      new RegExp(`ops: executor ${FUNCTION_NAME} \\(${REGION}\\) failed: database "no_such_db" does not exist`),
    );
    const json = await ops(["--stack", "eu-broken", "--json", "--", "tenant", "list"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { kind: "executor", message: expect.stringMatching(/no_such_db/) } });

    // An executor deployed before this operation existed: the reply says how to fix it.
    const real = createHandler(cluster.config);
    cluster.setHandler(() =>
      Promise.reject(
        Object.assign(new Error('unknown operation "tenancy": one of migrate, createTenant'), { name: "OperationInputError" }),
      ),
    );
    try {
      const old = await ops(["--stack", "eu-prod", "--", "tenant", "list"]);
      expect(old.code).toBe(1);
      expect(old.stderr).toMatch(/unknown operation "tenancy".*npm run build:executor/);
    } finally {
      cluster.setHandler(real);
    }
  });

  it("an executor that cannot be reached fails with exit 1 saying so and that nothing ran", async () => {
    const base = contracts.get("eu-prod")!;
    const connection = { ...base.database.connection, endpoint: `http://127.0.0.1:${await freePort()}` };
    contracts.set("eu-gone", { ...base, stack: "eu-gone", database: { ...base.database, connection } });
    stacks.push({ stack: "eu-gone", kind: "aws", region: "eu", environment: "prod" });
    const gone = await ops(["--stack", "eu-gone", "--", "tenant", "graduate", "acme-capital"]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toBe("");
    expect(gone.stderr).toMatch(
      /ops: executor eu-test-db-executor \(eu-central-1 at http:\/\/127\.0\.0\.1:\d+\) is unreachable .*Nothing ran in the database/,
    );
  });

  it("bad input to ops itself: exit 2 naming the field, nothing invoked", async () => {
    const invokes = cluster.endpoint.requests.invoke;
    for (const [argv, field] of [
      [["--", "tenant", "list"], "--stack"],
      [["--stack", "eu-prod"], "command"],
      [["--stack", "eu-prod", "--"], "command"],
      [["--stack", "eu-prod", "tenant", "list"], "command"],
      [["--stack", "nowhere", "--", "tenant", "list"], "--stack"],
      [["--stack", "eu-prod", "--bogus", "--", "tenant", "list"], "--bogus"],
    ] as const) {
      const bad = await ops(["--json", ...argv]);
      expect(bad.code, `${argv.join(" ")}: ${bad.stdout}`).toBe(2);
      expect(JSON.parse(bad.stdout)).toMatchObject({ error: { kind: "usage", field } });
    }
    expect(cluster.endpoint.requests.invoke).toBe(invokes);
  });
});
