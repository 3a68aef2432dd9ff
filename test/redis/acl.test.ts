import { describe, expect, it } from "vitest";
import { passwordHashRule, renderTenantAcl, setUserArgs } from "../../lib/redis/acl";
import { InvalidTenantIdError } from "../../lib/redis/keys";

const ID = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";
const KEYS = `~tenant:{${ID}}:* ~quota:{${ID}}:used ~quota:{${ID}}:sizes ~quota:{${ID}}:expiry %R~quota:{${ID}}:limit`;
const CHANNELS_DB0 = `resetchannels &tenant:{${ID}}:* &__keyspace@0__:tenant:{${ID}}:*`;
const COMMANDS =
  "-@all +@read +@write +@pubsub +@transaction +@connection +fcall +fcall_ro +time -@admin -@dangerous " +
  "-keys -scan -randomkey -dbsize -info -flushall -flushdb -select -move -copy -function -pubsub -client|tracking";
const CLUSTER = "+cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|myid +cluster|keyslot";

describe("renderTenantAcl", () => {
  it.each([
    ["defaults", {}, `on ${KEYS} ${CHANNELS_DB0} ${COMMANDS}`],
    ["db 3", { db: 3 }, `on ${KEYS} resetchannels &tenant:{${ID}}:* &__keyspace@3__:tenant:{${ID}}:* ${COMMANDS}`],
    ["cluster", { cluster: true }, `on ${KEYS} ${CHANNELS_DB0} ${COMMANDS.replace("+time ", `+time ${CLUSTER} `)}`],
    ["frozen", { frozen: true }, `on ${KEYS} ${CHANNELS_DB0} ${COMMANDS} -@write +del +unlink +hdel +zrem +decrby`],
  ])("%s", (_name, options, accessString) => {
    const acl = renderTenantAcl(ID, options);
    expect(acl.accessString).toBe(accessString);
    expect(acl.rules.join(" ")).toBe(accessString);
  });

  it("names the user for Redis and ElastiCache (UserId allows letters, digits, hyphens only)", () => {
    const acl = renderTenantAcl(ID.toUpperCase());
    expect(acl.userName).toBe(`tenant_${ID}`);
    expect(acl.elasticacheUserId).toBe(`tenant-${ID}`);
    expect(acl.elasticacheUserId).toMatch(/^[a-zA-Z][a-zA-Z0-9-]*$/);
  });

  it("holds what ElastiCache requires of an access string: explicit `on`, no password, no `reset`", () => {
    for (const options of [{}, { frozen: true }, { cluster: true }]) {
      const { rules } = renderTenantAcl(ID, options);
      expect(rules[0]).toBe("on");
      expect(rules.filter((r) => r === "reset" || r.startsWith(">") || r.startsWith("#") || r === "nopass")).toEqual([]);
    }
  });

  it("never grants everything: no ~*, &*, allkeys, allchannels, +@all", () => {
    for (const options of [{}, { frozen: true }, { cluster: true }]) {
      const { rules } = renderTenantAcl(ID, options);
      expect(rules.filter((r) => ["~*", "&*", "allkeys", "allchannels", "+@all", "allcommands", "%R~*", "%W~*"].includes(r))).toEqual([]);
    }
  });

  it.each(["", "acme", `${ID} ~*`, `${ID}}:* ~*`])("refuses tenant id %j", (id) => {
    expect(() => renderTenantAcl(id)).toThrow(InvalidTenantIdError);
  });

  it("refuses a db outside 0-15", () => {
    expect(() => renderTenantAcl(ID, { db: 16 })).toThrow(RangeError);
  });
});

describe("setUserArgs", () => {
  const acl = renderTenantAcl(ID);
  const hash = "a".repeat(64);

  it("with a password: reset, the rules, then the hash (create or replace everything)", () => {
    expect(setUserArgs(acl, hash)).toEqual([`tenant_${ID}`, "reset", ...acl.rules, `#${hash}`]);
  });

  it("without: keeps the passwords and clears keys and selectors before the rules", () => {
    expect(setUserArgs(acl)).toEqual([`tenant_${ID}`, "resetkeys", "clearselectors", ...acl.rules]);
  });

  it.each(["", "A".repeat(64), "a".repeat(63), "secret", `${"a".repeat(64)} ~*`])("refuses password hash %j", (h) => {
    expect(() => passwordHashRule(h)).toThrow(/sha256/);
  });
});
