/** The RLS vulnerability table: which server versions are exposed to what (pure). */
import { describe, expect, it } from "vitest";
import { isVulnerable, parseServerVersionNum, RLS_ADVISORIES, unfixedAdvisories } from "../../lib/audit/rls-advisories";

const ids = (versionNum: number) => unfixedAdvisories(versionNum).map((a) => a.id);

describe("parseServerVersionNum", () => {
  it.each([
    [150020, { major: 15, minor: 20, text: "15.20" }],
    [180007, { major: 18, minor: 7, text: "18.7" }],
    [100001, { major: 10, minor: 1, text: "10.1" }],
    [90624, { major: 9.6, minor: 24, text: "9.6.24" }],
    [90501, { major: 9.5, minor: 1, text: "9.5.1" }],
  ])("%i → %j", (num, expected) => {
    expect(parseServerVersionNum(num)).toEqual(expected);
  });

  it("refuses what is not a server_version_num", () => {
    expect(() => parseServerVersionNum(15.2)).toThrow();
    expect(() => parseServerVersionNum(0)).toThrow();
  });
});

describe("unfixedAdvisories", () => {
  it.each<[string, number, string[]]>([
    ["15.20 (this machine): nothing known", 150020, []],
    ["15.18: the ON CONFLICT DO UPDATE leak of our notes", 150018, ["ON-CONFLICT-DO-UPDATE-RLS"]],
    ["15.14: the same", 150014, ["ON-CONFLICT-DO-UPDATE-RLS"]],
    ["15.13: plus CVE-2025-8713", 150013, ["CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"]],
    ["15.8: plus the November 2024 pair", 150008, ["CVE-2024-10976", "CVE-2024-10978", "CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"]],
    [
      "15.6: plus CVE-2024-4317",
      150006,
      ["CVE-2024-4317", "CVE-2024-10976", "CVE-2024-10978", "CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"],
    ],
    [
      "15.2: plus CVE-2023-2455",
      150002,
      ["CVE-2023-2455", "CVE-2024-4317", "CVE-2024-10976", "CVE-2024-10978", "CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"],
    ],
    ["16.16 and 17.12 and 18.7: fixed", 160016, []],
    ["17.12", 170012, []],
    ["18.7", 180007, []],
    ["18.6: the ON CONFLICT leak only (18.0 shipped after the others were fixed)", 180006, ["ON-CONFLICT-DO-UPDATE-RLS"]],
    ["17.5: CVE-2025-8713 and ON CONFLICT", 170005, ["CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"]],
    ["13.22: not CVE-2024-4317 (13 never had it); ON CONFLICT has no fix on 13", 130022, ["ON-CONFLICT-DO-UPDATE-RLS"]],
    ["12.22 (end of life): CVE-2025-8713 was never fixed on 12", 120022, ["CVE-2025-8713", "ON-CONFLICT-DO-UPDATE-RLS"]],
    [
      "9.5.1: everything since RLS arrived",
      90501,
      [
        "CVE-2016-2193",
        "CVE-2017-7484",
        "CVE-2017-15099",
        "CVE-2019-10130",
        "CVE-2023-2455",
        "CVE-2024-10976",
        "CVE-2024-10978",
        "CVE-2025-8713",
        "ON-CONFLICT-DO-UPDATE-RLS",
      ],
    ],
    ["9.4.26 (before RLS): only the version-independent ones it never got a fix for", 90426, ["CVE-2024-10978", "CVE-2025-8713"]],
  ])("%s", (_name, num, expected) => {
    expect(ids(num)).toEqual(expected);
  });

  it("every advisory is fixed exactly at its listed minor, on every listed branch", () => {
    for (const a of RLS_ADVISORIES) {
      for (const [major, minor] of Object.entries(a.fixed)) {
        const m = Number(major);
        expect(isVulnerable(a, { major: m, minor, text: "" }), `${a.id} at ${major}.${minor}`).toBe(false);
        if (minor > 0) expect(isVulnerable(a, { major: m, minor: minor - 1, text: "" }), `${a.id} at ${major}.${minor - 1}`).toBe(true);
      }
    }
  });

  it("lists every CVE our notes name", () => {
    for (const id of [
      "CVE-2016-2193",
      "CVE-2017-7484",
      "CVE-2017-15099",
      "CVE-2019-10130",
      "CVE-2023-2455",
      "CVE-2024-4317",
      "CVE-2024-10976",
      "CVE-2024-10978",
      "CVE-2025-8713",
    ]) {
      expect(RLS_ADVISORIES.map((a) => a.id)).toContain(id);
    }
  });
});
