/**
 * The platform contract (lib/platform/contract.ts): every output of either kind, missing or of the
 * wrong type, is refused with a message naming the output and the stack; the producers check their
 * own outputs with the same schema and export SECRET_OUTPUTS as secrets; nothing in it is a path.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import {
  awsPlatformOutputs,
  checkPlatformOutput,
  localPlatformOutputs,
  parsePlatformContract,
  PlatformContractError,
  redactSecrets,
  SECRET_OUTPUTS,
} from "../../lib/platform/contract";
import { AWS, LOCAL } from "./fixtures";

/** Every leaf path of a value (arrays by index), e.g. `database.connection.host`. */
function leaves(value: unknown, prefix: string[] = []): string[][] {
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => leaves(v, [...prefix, k]));
  return [prefix];
}

function withValue(base: object, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(base) as Record<string, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  if (value === undefined) delete at[path[path.length - 1]];
  else at[path[path.length - 1]] = value;
  return copy;
}

/** Leaves that may be absent: optional fields and members of open maps. */
const MAY_BE_ABSENT = /^(database\.connection\.kind|database\.tenantIds\..*|schema\.roles\..*|schema\.migrations\.\d+)$/;

function thrown(fn: () => unknown): PlatformContractError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PlatformContractError);
    return err as PlatformContractError;
  }
  throw new Error("did not throw");
}

describe.each([
  ["local", LOCAL],
  ["aws", AWS],
] as const)("the %s contract", (_kind, valid) => {
  it("parses a valid one as it is", () => {
    expect(parsePlatformContract(valid, valid.stack)).toEqual(valid);
  });

  const paths = leaves(valid).map((p) => p.join("."));

  it.each(paths.filter((p) => !MAY_BE_ABSENT.test(p)))("missing `%s` is refused, naming the output and the stack", (path) => {
    const err = thrown(() => parsePlatformContract(withValue(valid, path.split("."), undefined), valid.stack));
    expect(err.output).toBe(path);
    expect(err.stack).toBe(valid.stack);
    expect(err.message).toMatch(
      new RegExp(`^platform stack ${valid.stack}: output \`${path.replace(/\./g, "\\.")}\` is missing \\(expected `),
    );
  });

  it.each(paths)("`%s` of the wrong type is refused, naming the output and the stack", (path) => {
    const current = path.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], valid);
    const wrong = typeof current === "number" ? "5432" : typeof current === "boolean" ? "yes" : 42;
    const err = thrown(() => parsePlatformContract(withValue(valid, path.split("."), wrong), valid.stack));
    expect(err.output).toBe(path);
    expect(err.message).toContain(`platform stack ${valid.stack}: output \`${path}\` `);
  });

  it("refuses the outputs of another stack", () => {
    expect(thrown(() => parsePlatformContract(valid, "us-prod")).message).toBe(
      `platform stack us-prod: output \`stack\` is "${valid.stack}": these are the outputs of another stack than us-prod`,
    );
  });

  it("drops outputs outside the contract", () => {
    expect(parsePlatformContract({ ...valid, adminPasswordFile: "/home/me/x" }, valid.stack)).toEqual(valid);
  });
});

describe("bad input, by example", () => {
  it.each([
    [{}, "platform stack local-eu has no outputs: it has not been deployed yet (run `npm run pulumi -- up --stack local-eu`)"],
    [{ region: "eu" }, "platform stack local-eu: output `kind` is missing (expected one of local, aws)"],
    [{ ...LOCAL, kind: "gcp" }, 'platform stack local-eu: output `kind` is "gcp" (expected one of local, aws)'],
    [withValue(LOCAL, ["database", "oid"], undefined), "platform stack local-eu: output `database.oid` is missing (expected a number)"],
    [
      withValue(LOCAL, ["database", "oid"], "16384"),
      "platform stack local-eu: output `database.oid` has the wrong type: expected a number, found a string",
    ],
    [withValue(LOCAL, ["region"], "ap"), 'platform stack local-eu: output `region` is "ap" (expected one of "eu", "us")'],
    [withValue(LOCAL, ["redis", "tls"], true), "platform stack local-eu: output `redis.tls` is true (expected false)"],
    [
      withValue(LOCAL, ["database", "connection"], { kind: "executor", functionName: "f", region: "eu-central-1" }),
      "platform stack local-eu: output `database.connection.server` is missing (expected a string)",
    ],
    [
      withValue(LOCAL, ["database", "connection", "kind"], "tunnel"),
      'platform stack local-eu: output `database.connection.kind` is "tunnel" (expected one of "executor", "direct")',
    ],
    [
      withValue(LOCAL, ["database", "tenantIds"], { "acme-capital": "nope" }),
      /^platform stack local-eu: output `database\.tenantIds\.acme-capital` is invalid: must be a uuid/,
    ],
  ])("%j", (outputs, message) => {
    const err = thrown(() => parsePlatformContract(outputs, "local-eu"));
    if (typeof message === "string") expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });
});

describe("the AWS tenant-context keys", () => {
  it("are ARNs, never values: a key in place of its secret's ARN, or no key at all, is refused", () => {
    expect(parsePlatformContract(AWS, "eu-prod")).toMatchObject({ contextKeys: { current: { kid: "eu-2" } } });
    expect(
      thrown(() => parsePlatformContract(withValue(AWS, ["contextKeys", "current", "secretArn"], "ab".repeat(32)), "eu-prod")).message,
    ).toBe(
      'platform stack eu-prod: output `contextKeys.current.secretArn` is invalid: must be an ARN (arn:aws:…) (found "' +
        "ab".repeat(32) +
        '")',
    );
    expect(thrown(() => parsePlatformContract(withValue(AWS, ["contextKeys", "keys"], []), "eu-prod")).message).toMatch(
      /^platform stack eu-prod: output `contextKeys\.keys` is invalid/,
    );
    expect(thrown(() => parsePlatformContract(withValue(AWS, ["contextKeys"], undefined), "eu-prod")).message).toBe(
      "platform stack eu-prod: output `contextKeys` is missing (expected an object)",
    );
  });
});

describe("secrets", () => {
  it("redactSecrets hides exactly SECRET_OUTPUTS, without touching its input", () => {
    const redacted = redactSecrets(LOCAL);
    expect(redacted.redis.adminPassword).toBe("[secret]");
    expect(redacted.appUrl).toBe("[secret]");
    expect(redacted.migratorUrl).toBe("[secret]");
    expect(redacted.contextKey).toBe("[secret]");
    expect({ ...redacted, redis: LOCAL.redis, appUrl: LOCAL.appUrl, migratorUrl: LOCAL.migratorUrl, contextKey: LOCAL.contextKey }).toEqual(
      LOCAL,
    );
    expect(LOCAL.redis.adminPassword).toBe("s3cret-admin");
    expect(JSON.stringify(redactSecrets(LOCAL))).not.toMatch(/s3cret/);
    // Negative control: the unredacted outputs do carry them.
    expect(JSON.stringify(LOCAL)).toMatch(/s3cret/);
    expect(redactSecrets(AWS)).toEqual(AWS);
    expect(SECRET_OUTPUTS).toEqual(["redis.adminPassword", "appUrl", "migratorUrl", "contextKey"]);
  });

  it("no output of either kind is a file path", () => {
    for (const value of leaves(LOCAL).map((p) => p.reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], LOCAL)))
      expect(String(value)).not.toMatch(/^\//);
  });
});

describe("the producers", () => {
  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      { newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }), call: (args) => args.inputs },
      "alphapulse-platform",
      "local-eu",
      false,
    );
  });

  /** An Output's value, or its failure (Output#promise is internal but stable). */
  const settle = (o: pulumi.Output<unknown>) => (o as unknown as { promise(): Promise<unknown> }).promise();

  it("export exactly the contract, SECRET_OUTPUTS as secrets", async () => {
    const { kind, stack, ...values } = LOCAL;
    const outputs = localPlatformOutputs(stack, { ...values, database: { ...values.database, oid: pulumi.output(16384) } });
    expect(Object.keys(outputs).sort()).toEqual(Object.keys(LOCAL).sort());
    const resolved = Object.fromEntries(await Promise.all(Object.entries(outputs).map(async ([k, o]) => [k, await settle(o)])));
    expect(parsePlatformContract(resolved, "local-eu")).toEqual(LOCAL);
    expect(kind).toBe("local");
    const secret = Object.fromEntries(
      await Promise.all(Object.entries(outputs).map(async ([k, o]) => [k, await pulumi.isSecret(o as pulumi.Output<unknown>)])),
    );
    expect(
      Object.keys(secret)
        .filter((k) => secret[k])
        .sort(),
    ).toEqual(["appUrl", "contextKey", "migratorUrl", "redis"]);

    const { kind: awsKind, stack: awsStack, ...awsValues } = AWS;
    expect(awsKind).toBe("aws");
    const aws = awsPlatformOutputs(awsStack, awsValues);
    expect(Object.keys(aws).sort()).toEqual(Object.keys(AWS).sort());
    for (const o of Object.values(aws)) expect(await pulumi.isSecret(o as pulumi.Output<unknown>)).toBe(false);
  });

  it("check each output with the readers' schema: a bad one fails the update, naming it and the stack", () => {
    expect(checkPlatformOutput("local", "local-eu", "database", LOCAL.database)).toBe(LOCAL.database);
    expect(() => checkPlatformOutput("local", "local-eu", "database", { ...LOCAL.database, oid: 0 })).toThrow(
      /^platform stack local-eu: output `database\.oid` is invalid: .*\(found 0\)$/,
    );
    expect(() => checkPlatformOutput("aws", "eu-prod", "redis", { ...AWS.redis, tls: false })).toThrow(
      "platform stack eu-prod: output `redis.tls` is false (expected true)",
    );
    expect(() => checkPlatformOutput("local", "local-eu", "adminPasswordFile", "/x")).toThrow(
      "platform stack local-eu: output `adminPasswordFile` is not part of the local contract",
    );
  });
});
