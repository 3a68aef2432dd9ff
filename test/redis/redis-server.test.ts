import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isListening } from "../../lib/local/processes";
import { renderAclFile, renderRedisConfig, startRedis, stopRedisAt } from "../../lib/local/redis-server";
import { openRedis } from "../../lib/redis/client";
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
});
