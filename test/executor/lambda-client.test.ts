/**
 * The executor transport's client — the real @aws-sdk/client-lambda, its SigV4 signing and its
 * retries — against the local endpoint that answers like Lambda's Invoke API: results, handler
 * errors (`X-Amz-Function-Error`), throttling (429, retried), a connection dropped after the call was
 * sent (not retried: the handler may be running), unauthorised callers (403),
 * a missing function (404) and an unreachable endpoint. The negative control runs through the
 * providers: a handler error must fail the Pulumi operation with the handler's message, never
 * succeed silently. The handler here is a stand-in (handler.test.ts runs the real one): what is
 * under test is the transport.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecutorConnection } from "../../components/db/provider-runtime";
import { databaseProvider } from "../../components/db/database";
import { tenantProvider } from "../../components/db/tenant";
import { ExecutorError, invokeExecutor, neverReachedHandler } from "../../lib/executor/lambda-client";
import { startLocalExecutor, type LocalExecutor, type LocalHandler } from "../../lib/executor/local-endpoint";
import { freePort } from "../../lib/local/processes";

class TenantStillServedError extends Error {
  name = "TenantStillServedError";
}

describe("lambda-client against a local Lambda endpoint", () => {
  let endpoint: LocalExecutor;
  let handler: LocalHandler;
  let throttle = 0;
  const events: unknown[] = [];
  let connection: ExecutorConnection;

  beforeAll(async () => {
    endpoint = await startLocalExecutor({
      functionName: "eu-test-db-executor",
      handler: (event) => {
        events.push(event);
        return handler(event);
      },
      throttle: () => (throttle > 0 ? (throttle--, true) : false),
    });
    connection = {
      kind: "executor",
      functionName: "eu-test-db-executor",
      region: "eu-central-1",
      endpoint: endpoint.url,
      server: "eu-test/pg",
    };
  });
  afterAll(async () => endpoint?.close());

  const reset = (h: LocalHandler) => {
    handler = h;
    events.length = 0;
    Object.assign(endpoint.requests, { invoke: 0, throttled: 0, secrets: 0, refused: 0 });
  };

  it("sends the plain Invoke payload and returns the handler's JSON result", async () => {
    reset((event) => Promise.resolve({ echoed: event }));
    const payload = { operation: "findTenant", database: "alphapulse", args: { ref: "acme-capital" } };
    expect(await invokeExecutor(connection, payload)).toEqual({ echoed: payload });
    expect(events).toEqual([payload]);
    reset(() => Promise.resolve(null));
    expect(await invokeExecutor(connection, payload)).toBeNull();
  });

  it("turns X-Amz-Function-Error into an ExecutorError with the handler's message, type and SQLSTATE", async () => {
    reset(() => Promise.reject(new TenantStillServedError('tenant "acme-capital" is active: run tenancy tenant delete acme-capital')));
    const err = await invokeExecutor(connection, { operation: "releaseTenantFromStack", database: "a", args: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecutorError);
    expect(err).toMatchObject({
      kind: "function",
      errorType: "TenantStillServedError",
      message: 'tenant "acme-capital" is active: run tenancy tenant delete acme-capital',
    });
    const missing = Object.assign(new Error('database "gone" does not exist'), { name: "PostgresError.3D000" });
    reset(() => Promise.reject(missing));
    await expect(invokeExecutor(connection, { operation: "findTenant", database: "gone", args: {} })).rejects.toMatchObject({
      code: "3D000",
      message: 'database "gone" does not exist',
    });
    expect(endpoint.requests.invoke).toBe(1); // a handler error is not retried
  });

  it("retries throttling (429) and succeeds; past the retries it fails and the handler never ran", async () => {
    reset(() => Promise.resolve({ ok: true }));
    throttle = 2;
    expect(await invokeExecutor(connection, { operation: "findTenant", database: "a", args: {} })).toEqual({ ok: true });
    expect(endpoint.requests).toMatchObject({ throttled: 2, invoke: 1 });
    reset(() => Promise.resolve({ ok: true }));
    throttle = 3;
    await expect(invokeExecutor(connection, { operation: "findTenant", database: "a", args: {} })).rejects.toThrow(
      /executor eu-test-db-executor \(eu-central-1 at http:\/\/127\.0\.0\.1:\d+\) is throttled.*TooManyRequestsException 429.*Nothing ran/,
    );
    expect(endpoint.requests).toMatchObject({ throttled: 3, invoke: 0 });
    expect(events).toEqual([]);
  });

  it("refuses an unauthorised caller (403) with a clear error; nothing runs", async () => {
    reset(() => Promise.resolve({ ok: true }));
    const call = { operation: "createTenant", database: "a", args: {} };
    await expect(
      invokeExecutor(connection, call, { credentials: { accessKeyId: "AKIAUNKNOWN", secretAccessKey: "whatever" } }),
    ).rejects.toThrow(
      /refused the call: not authorised to invoke it \(UnrecognizedClientException 403.*lambda:InvokeFunction.*Nothing ran/,
    );
    await expect(
      invokeExecutor(connection, call, { credentials: { accessKeyId: "ALPHAPULSELOCAL", secretAccessKey: "a-wrong-secret" } }),
    ).rejects.toThrow(/not authorised.*InvalidSignatureException 403/);
    expect(endpoint.requests).toMatchObject({ refused: 2, invoke: 0 });
    expect(events).toEqual([]);
  });

  it("names a missing function and an unreachable endpoint", async () => {
    reset(() => Promise.resolve({ ok: true }));
    await expect(
      invokeExecutor({ ...connection, functionName: "other-executor" }, { operation: "x", database: "a", args: {} }),
    ).rejects.toThrow(/executor other-executor .* does not exist \(ResourceNotFoundException 404/);
    const closed = `http://127.0.0.1:${await freePort()}`;
    await expect(
      invokeExecutor({ ...connection, endpoint: closed }, { operation: "x", database: "a", args: {} }, { maxAttempts: 1 }),
    ).rejects.toThrow(/is unreachable \(.*ECONNREFUSED.*Nothing ran in the database/);
    expect(events).toEqual([]);
  });

  it("a connection dropped after the call was sent is not retried (the handler may be running) and says so", async () => {
    // A stand-in Lambda API that reads the whole request, counts it, and drops the connection
    // without answering: what a long Invoke looks like when the network fails half-way.
    let received = 0;
    const dropping = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        received++;
        res.socket?.destroy();
      });
    });
    await new Promise<void>((resolve) => dropping.listen(0, "127.0.0.1", resolve));
    const { port } = dropping.address() as AddressInfo;
    try {
      await expect(
        invokeExecutor({ ...connection, endpoint: `http://127.0.0.1:${port}` }, { operation: "tenancy", database: "a", args: {} }),
      ).rejects.toThrow(/the connection failed after the call was sent .* may have run\. It was not retried/);
      expect(received).toBe(1);
    } finally {
      await new Promise((resolve) => dropping.close(resolve));
    }
  });

  it("what may be retried: only a throttle or a connection that was never opened", () => {
    const withStatus = (name: string, httpStatusCode: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });
    const network = (code: string) => Object.assign(new Error(code), { code, $metadata: {} });
    expect(neverReachedHandler(withStatus("TooManyRequestsException", 429))).toBe(true);
    expect(neverReachedHandler(network("ECONNREFUSED"))).toBe(true);
    expect(neverReachedHandler(network("ECONNRESET"))).toBe(false);
    expect(neverReachedHandler(network("ETIMEDOUT"))).toBe(false);
    expect(neverReachedHandler(withStatus("ServiceException", 500))).toBe(false);
  });

  it("negative control: a handler error fails the provider's operation with the handler's message", async () => {
    const inputs = { connection, database: "alphapulse", databaseOid: 1, slug: "acme-capital", tier: "pro", region: "eu" };
    reset(() => Promise.reject(new Error('tenant "acme-capital": residency "us" differs from this database\'s "eu"')));
    await expect(tenantProvider.create(inputs)).rejects.toThrow('tenant "acme-capital": residency "us" differs from this database\'s "eu"');
    expect(events).toEqual([
      { operation: "createTenant", database: "alphapulse", args: { slug: "acme-capital", tier: "pro", region: "eu" } },
    ]);
    reset(() => Promise.reject(new TenantStillServedError('database "alphapulse" still holds 1 tenant(s)')));
    await expect(databaseProvider.delete!("id", { connection, name: "alphapulse", oid: 1 })).rejects.toThrow(/still holds 1 tenant/);
    // The same provider succeeds only on a result; a missing database reads as gone on this transport too.
    reset(() => Promise.reject(Object.assign(new Error('database "alphapulse" does not exist'), { name: "PostgresError.3D000" })));
    expect(await tenantProvider.read!("t-1", { ...inputs, tenantId: "t-1", placement: "shared", status: "active" })).toEqual({ id: "" });
    reset(() => Promise.resolve({ id: "t-1", slug: "acme-capital", displayName: "acme-capital", placement: "shared", status: "active" }));
    expect((await tenantProvider.create(inputs)).id).toBe("t-1");
  });
});
