import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isListening } from "../../lib/local/processes";
import { LOCAL_REGION_REDIS_SETTINGS } from "../../lib/local/region-services";
import { aclFileUsers, renderAclFile, renderRedisConfig, startRedis, stopRedisAt } from "../../lib/local/redis-server";
import { openRedis } from "../../lib/redis/client";
import { tenantKey } from "../../lib/redis/keys";
import { cacheLimitsForTier } from "../../lib/redis/quota";
import { grantTenantCache } from "../../lib/redis/tenant-users";
import { errorOf } from "./harness";

describe("renderRedisConfig", () => {
  it("binds loopback, persists nothing, keeps users in an ACL file, publishes keyspace (not keyevent) notifications", () => {
    expect(renderRedisConfig({ port: 7000, dir: "/tmp/r", daemonize: false, settings: { maxmemory: "64mb" } })).toBe(
      [
        "bind 127.0.0.1",
        "port 7000",
        "protected-mode yes",
        'save ""',
        "appendonly no",
        "dir /tmp/r",
        "daemonize no",
        "pidfile /tmp/r/redis.pid",
        "logfile /tmp/r/redis.log",
        "aclfile /tmp/r/users.acl",
        "notify-keyspace-events KA",
        "maxmemory 64mb",
        "",
      ].join("\n"),
    );
  });

  it("switches the default user off and stores only the admin password's hash", () => {
    expect(renderAclFile("secret")).toBe(
      "user default off resetchannels -@all\nuser admin on #2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b ~* &* +@all\n",
    );
  });

  it("keeps every other user of the file a previous run saved; default is forced off and admin rewritten", () => {
    const saved = [
      "user admin on #0000000000000000000000000000000000000000000000000000000000000000 ~* &* +@all",
      "user default on nopass ~* &* +@all",
      "user tenant_0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70 on #abc ~t:0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70:* resetchannels -@all +@read",
      "",
    ].join("\n");
    const rendered = renderAclFile("secret", saved);
    expect(aclFileUsers(rendered)).toEqual(["default", "admin", "tenant_0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70"]);
    expect(rendered.split("\n").slice(0, 2)).toEqual(renderAclFile("secret").split("\n").slice(0, 2));
    expect(rendered).not.toMatch(/nopass|#0000/);
  });
});

describe("startRedis", () => {
  it("starts on a free loopback port, refuses the default user, and stops", async () => {
    const server = await startRedis();
    try {
      expect(server.port).not.toBe(6379);
      const admin = await openRedis(server.adminUrl);
      expect(await admin.call("ACL", "WHOAMI")).toBe("admin");
      expect(await admin.call("CONFIG", "GET", "save")).toEqual(["save", ""]);
      admin.disconnect();
      expect(await errorOf(openRedis(`redis://127.0.0.1:${server.port}`).then((r) => r.get("x")))).toMatch(/NOAUTH|WRONGPASS/);
    } finally {
      await server.stop({ removeDir: true });
    }
    expect(await isListening(server.port)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
  });

  it("daemonized, outlives its starter and is stopped from its directory", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-redis-test-"));
    const server = await startRedis({ dir, daemonize: true, adminPassword: "admin-password-0123456789" });
    try {
      expect(await isListening(server.port)).toBe(true);
      expect(server.adminUrl).toBe(`redis://admin:admin-password-0123456789@127.0.0.1:${server.port}`);
    } finally {
      await stopRedisAt(dir, { removeDir: true });
    }
    expect(await isListening(server.port)).toBe(false);
  });

  it("a local region's Redis restarted in its directory keeps its tenant users and their keys (negative controls: the admin-only ACL file, no persistence)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-redis-restart-"));
    const tenantId = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
    const adminPassword = "admin-password-0123456789";
    let server = await startRedis({ dir, daemonize: true, adminPassword, settings: LOCAL_REGION_REDIS_SETTINGS });
    const port = server.port;
    try {
      const admin = await openRedis(server.adminUrl);
      const { password, user } = await grantTenantCache(admin, tenantId, { limits: cacheLimitsForTier("pro") });
      admin.disconnect();
      const tenant = await openRedis(server.urlFor(user, password!));
      await tenant.call("SET", tenantKey(tenantId, "quote"), "42");
      tenant.disconnect();
      /** What the tenant sees after a restart: its user and its key, or the error. */
      const afterRestart = async (): Promise<string> => {
        await stopRedisAt(dir);
        server = await startRedis({ dir, port, daemonize: true, adminPassword, settings: LOCAL_REGION_REDIS_SETTINGS });
        try {
          const again = await openRedis(server.urlFor(user, password!));
          try {
            return String(await again.call("GET", tenantKey(tenantId, "quote")));
          } finally {
            again.disconnect();
          }
        } catch (err) {
          return (err as Error).message;
        }
      };
      expect(await afterRestart()).toBe("42");
      expect(aclFileUsers(readFileSync(path.join(dir, "users.acl"), "utf8"))).toContain(user);

      // Negative control 1: the ACL file as it was rewritten before (admin only) loses the tenant user.
      await stopRedisAt(dir);
      writeFileSync(path.join(dir, "users.acl"), renderAclFile(adminPassword));
      server = await startRedis({ dir, port, daemonize: true, adminPassword, settings: LOCAL_REGION_REDIS_SETTINGS });
      expect(await errorOf(openRedis(server.urlFor(user, password!)).then((r) => r.get("x")))).toMatch(/WRONGPASS/);
    } finally {
      await stopRedisAt(dir, { removeDir: true });
    }

    // Negative control 2: without persistence (a throwaway server) the keys are gone after a restart.
    const plainDir = mkdtempSync(path.join(os.tmpdir(), "alphapulse-redis-plain-"));
    const plain = await startRedis({ dir: plainDir, daemonize: true, adminPassword });
    try {
      const admin = await openRedis(plain.adminUrl);
      await admin.call("SET", tenantKey(tenantId, "quote"), "42");
      admin.disconnect();
      await stopRedisAt(plainDir);
      const restarted = await startRedis({ dir: plainDir, port: plain.port, daemonize: true, adminPassword });
      const again = await openRedis(restarted.adminUrl);
      expect(await again.call("GET", tenantKey(tenantId, "quote"))).toBeNull();
      again.disconnect();
    } finally {
      await stopRedisAt(plainDir, { removeDir: true });
    }
  });
});
