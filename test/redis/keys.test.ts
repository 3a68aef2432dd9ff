import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkTenantId,
  decodeKeyPart,
  encodeKeyPart,
  InvalidKeyPartError,
  InvalidTenantIdError,
  keyspaceChannelPrefix,
  parseTenantKey,
  quotaKeys,
  tenantChannel,
  tenantIdFromUserName,
  tenantKey,
  tenantUserName,
} from "../../lib/redis/keys";

const ID = "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70";

describe("tenantKey", () => {
  it.each([
    [["quotes"], `tenant:{${ID}}:quotes`],
    [["quotes", "AAPL"], `tenant:{${ID}}:quotes:AAPL`],
    [["session", "u-1", "token_2"], `tenant:{${ID}}:session:u-1:token_2`],
    [["a.b~c%20d"], `tenant:{${ID}}:a.b~c%20d`],
    [["0"], `tenant:{${ID}}:0`],
  ])("%j → %s", (parts, key) => {
    expect(tenantKey(ID, ...parts)).toBe(key);
  });

  it("lower-cases the tenant id (one namespace per uuid, whatever its spelling)", () => {
    expect(tenantKey(ID.toUpperCase(), "x")).toBe(`tenant:{${ID}}:x`);
  });

  it.each([
    ["", "must not be empty"],
    ["a:b", 'must not contain the separator ":"'],
    [":", 'must not contain the separator ":"'],
    ["*", "glob characters"],
    ["a*", "glob characters"],
    ["?", "glob characters"],
    ["[abc]", "glob characters"],
    ["]", "glob characters"],
    ["a\\b", "glob characters"],
    ["{tag}", "braces"],
    ["}", "braces"],
    ["a b", "whitespace or control"],
    ["a\nb", "whitespace or control"],
    ["a\r\nSET x y", "whitespace or control"],
    ["\t", "whitespace or control"],
    ["\u0000", "whitespace or control"],
    ["\u007f", "whitespace or control"],
    ["é", "must match"],
    ["a/b", "must match"],
    ['a"b', "must match"],
    ["x".repeat(257), "at most 256"],
  ])("refuses part %j (%s)", (part, reason) => {
    let err: unknown;
    try {
      tenantKey(ID, "ok", part);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidKeyPartError);
    expect((err as InvalidKeyPartError).index).toBe(1);
    expect((err as Error).message).toContain(reason);
  });

  it("refuses no parts, too many parts and non-strings", () => {
    expect(() => tenantKey(ID)).toThrow(InvalidKeyPartError);
    expect(() => tenantKey(ID, ...Array<string>(17).fill("a"))).toThrow(/at most 16 parts/);
    expect(() => tenantKey(ID, 42 as unknown as string)).toThrow(/must be a string/);
  });

  it.each([
    "",
    "acme",
    "0b5e8f3c1d2a4c8e9f1a2b3c4d5e6f70",
    `${ID}x`,
    ` ${ID}`,
    `${ID}\n`,
    "0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f7g",
    "*",
    `${ID.slice(0, 35)}*`,
    "{0b5e8f3c-1d2a-4c8e-9f1a-2b3c4d5e6f70}",
  ])("refuses tenant id %j", (id) => {
    expect(() => tenantKey(id, "x")).toThrow(InvalidTenantIdError);
  });

  it("refuses a non-string tenant id", () => {
    expect(() => checkTenantId(undefined)).toThrow(InvalidTenantIdError);
    expect(() => checkTenantId(42)).toThrow(InvalidTenantIdError);
  });

  it("never produces a key outside the tenant's prefix, for any accepted input (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 5 }), (parts) => {
        let key: string;
        try {
          key = tenantKey(ID, ...parts);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidKeyPartError);
          return;
        }
        expect(key.startsWith(`tenant:{${ID}}:`)).toBe(true);
        expect(key.slice(`tenant:{${ID}}:`.length).split(":")).toEqual(parts);
        expect(key.slice(`tenant:{${ID}}:`.length)).not.toMatch(/[*?[\]{}\\\s]/);
      }),
    );
  });
});

describe("encodeKeyPart", () => {
  it.each([
    ["AAPL", "AAPL"],
    ["BRK.B", "BRK.B"],
    ["a:b", "a%3Ab"],
    ["*", "%2A"],
    ["{x}", "%7Bx%7D"],
    ["a b", "a%20b"],
    ["line\nbreak", "line%0Abreak"],
    ["(it's)!", "%28it%27s%29%21"],
    ["é", "%C3%A9"],
    ["", "%"],
    ["%", "%25"],
  ])("%j → %j", (text, part) => {
    expect(encodeKeyPart(text)).toBe(part);
    expect(decodeKeyPart(part)).toBe(text);
    expect(() => tenantKey(ID, encodeKeyPart(text))).not.toThrow();
  });

  it("makes any text a valid, distinct key part (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 30 }), fc.string({ unit: "grapheme", maxLength: 30 }), (a, b) => {
        expect(() => tenantKey(ID, encodeKeyPart(a))).not.toThrow();
        expect(decodeKeyPart(encodeKeyPart(a))).toBe(a);
        if (a !== b) expect(encodeKeyPart(a)).not.toBe(encodeKeyPart(b));
      }),
    );
  });
});

describe("names derived from the tenant id", () => {
  it("quota keys share the tenant's hash tag", () => {
    expect(quotaKeys(ID)).toEqual({
      used: `quota:{${ID}}:used`,
      sizes: `quota:{${ID}}:sizes`,
      expiry: `quota:{${ID}}:expiry`,
      limit: `quota:{${ID}}:limit`,
    });
  });

  it("channels follow the key rules", () => {
    expect(tenantChannel(ID, "prices", "AAPL")).toBe(`tenant:{${ID}}:prices:AAPL`);
    expect(() => tenantChannel(ID, "*")).toThrow(InvalidKeyPartError);
  });

  it.each([
    [0, `__keyspace@0__:tenant:{${ID}}:`],
    [3, `__keyspace@3__:tenant:{${ID}}:`],
  ])("keyspace channel prefix for db %d", (db, prefix) => {
    expect(keyspaceChannelPrefix(ID, db)).toBe(prefix);
  });

  it.each([-1, 16, 1.5, NaN])("refuses db %d", (db) => {
    expect(() => keyspaceChannelPrefix(ID, db)).toThrow(RangeError);
  });

  it("user names round-trip", () => {
    expect(tenantUserName(ID)).toBe(`tenant_${ID}`);
    expect(tenantIdFromUserName(`tenant_${ID}`)).toBe(ID);
    expect(tenantIdFromUserName("tenant_acme")).toBeUndefined();
    expect(tenantIdFromUserName("admin")).toBeUndefined();
  });

  it.each([
    [`tenant:{${ID}}:quotes:AAPL`, { tenantId: ID, parts: ["quotes", "AAPL"] }],
    [`tenant:{${ID}}:a`, { tenantId: ID, parts: ["a"] }],
    [`tenant:{${ID}}:`, undefined],
    [`tenant:{${ID}}:a::b`, undefined],
    [`tenant:{${ID}}:a*`, undefined],
    [`tenant:${ID}:a`, undefined],
    [`quota:{${ID}}:used`, undefined],
    ["tenant:{not-a-uuid-but-36-characters-long}:a", undefined],
  ])("parseTenantKey(%j)", (key, parsed) => {
    expect(parseTenantKey(key)).toEqual(parsed);
  });
});
