import { describe, expect, it } from "vitest";
import { TENANT_TABLES } from "../../lib/schema/catalogue";
import { extendCatalogue, parseLocalStackConfig, readLocalStackConfig } from "../../lib/stack-config/local";
import { configKeyPath, decodeConfigValue, parseStackKind, projectConfigValues, StackConfigError } from "../../lib/stack-config/common";
import { REPO_ROOT } from "../../lib/pulumi/env";

const valid = {
  kind: "local",
  region: "eu",
  postgres: { port: 55432 },
  pgbouncer: { port: 56432 },
  redis: { port: 56379 },
  tenants: [{ slug: "acme-capital", tier: "pro", region: "eu" }],
};

function keyOf(values: Record<string, unknown>): string {
  try {
    parseLocalStackConfig(values);
  } catch (err) {
    expect(err).toBeInstanceOf(StackConfigError);
    return (err as StackConfigError).key;
  }
  throw new Error("expected a StackConfigError");
}

describe("local stack config", () => {
  it("parses the committed local stacks", () => {
    const eu = readLocalStackConfig(REPO_ROOT, "local-eu");
    const us = readLocalStackConfig(REPO_ROOT, "local-us");
    expect([eu.region, us.region]).toEqual(["eu", "us"]);
    expect(eu.tenants.every((t) => t.region === "eu") && us.tenants.every((t) => t.region === "us")).toBe(true);
    const ports = [eu, us].flatMap((c) => [c.postgres.port, c.pgbouncer.port, c.redis.port]);
    expect(new Set(ports).size).toBe(ports.length);
  });

  it("applies defaults", () => {
    const c = parseLocalStackConfig({ ...valid, tenants: undefined });
    expect(c.postgres.database).toBe("alphapulse");
    expect(c.tenants).toEqual([]);
    expect(c.catalogueExtension).toEqual([]);
    expect(c.transport).toBe("direct");
    expect(c.executor).toBeUndefined();
  });

  it("opts into the executor transport with its port", () => {
    const c = parseLocalStackConfig({ ...valid, transport: "executor", executor: { port: 57001 } });
    expect(c).toMatchObject({ transport: "executor", executor: { port: 57001 } });
  });

  it.each([
    [{ ...valid, region: "apac" }, "alphapulse-platform:region"],
    [{ ...valid, postgres: { port: 80 } }, "alphapulse-platform:postgres.port"],
    [{ ...valid, postgres: { port: 55432, database: "Bad-Name" } }, "alphapulse-platform:postgres.database"],
    [{ ...valid, redis: undefined }, "alphapulse-platform:redis"],
    [{ ...valid, tenants: [{ slug: "acme-capital", tier: "pro", region: "us" }] }, "alphapulse-platform:tenants[0].region"],
    [{ ...valid, tenants: [{ slug: "x", tier: "pro", region: "eu" }] }, "alphapulse-platform:tenants[0].slug"],
    [{ ...valid, tenants: [valid.tenants[0], valid.tenants[0]] }, "alphapulse-platform:tenants[1].slug"],
    [{ ...valid, tenants: [{ ...valid.tenants[0], tier: "gold" }] }, "alphapulse-platform:tenants[0].tier"],
    [{ ...valid, redis: { port: 55432 } }, "alphapulse-platform:pgbouncer.port"],
    [{ ...valid, postgress: {} }, "alphapulse-platform:postgress"],
    [{ ...valid, postgres: { port: 55432, host: "0.0.0.0" } }, "alphapulse-platform:postgres.host"],
    [{ ...valid, transport: "lambda" }, "alphapulse-platform:transport"],
    [{ ...valid, transport: "executor" }, "alphapulse-platform:executor.port"],
    [{ ...valid, transport: "executor", executor: { port: 56379 } }, "alphapulse-platform:executor.port"],
    [{ ...valid, transport: "executor", executor: { port: 57001, host: "0.0.0.0" } }, "alphapulse-platform:executor.host"],
  ])("names the key path of a bad value (%#)", (values, key) => {
    expect(keyOf(values)).toBe(key);
  });

  it("reads the kind", () => {
    expect(parseStackKind({ kind: "aws" })).toBe("aws");
    expect(() => parseStackKind({})).toThrow("alphapulse-platform:kind: must be one of local, aws");
  });

  it("decodes config values as Pulumi hands them to the program", () => {
    expect(decodeConfigValue("local")).toBe("local");
    expect(decodeConfigValue('{"port":5432}')).toEqual({ port: 5432 });
    expect(
      projectConfigValues({ "alphapulse-platform:region": "eu", "aws:region": "eu-central-1", "alphapulse-platform:redis": '{"port":1}' }),
    ).toEqual({
      region: "eu",
      redis: { port: 1 },
    });
    expect(configKeyPath(["tenants", 2, "slug"])).toBe("alphapulse-platform:tenants[2].slug");
  });

  it("extends the catalogue with nullable columns, and refuses an unknown table", () => {
    const out = extendCatalogue(TENANT_TABLES, [{ table: "trades", name: "note", type: "text" }]);
    expect(out.find((t) => t.name === "trades")!.columns.at(-1)).toEqual({ name: "note", type: "text", nullable: true });
    expect(out.filter((t) => t.name !== "trades")).toEqual(TENANT_TABLES.filter((t) => t.name !== "trades"));
    expect(() => extendCatalogue(TENANT_TABLES, [{ table: "nope", name: "x", type: "text" }])).toThrow(
      "alphapulse-platform:catalogueExtension[0].table",
    );
  });
});
