import { describe, expect, it } from "vitest";
import { ResidencyError } from "../../lib/platform/residency";
import { classifyFailure, pulumiErrorLines } from "../../lib/tenant-stacks/errors";

/** What the Automation API throws: a CommandError subclass carrying the CLI's output (recognised by name). */
function commandError(name: string, stderr: string, stdout = ""): Error {
  const err = new Error(`code: 255\n stdout: ${stdout}\n stderr: ${stderr}`) as Error & { commandResult: unknown };
  err.name = name;
  err.commandResult = { stdout, stderr, code: 255 };
  return err;
}

describe("failures of stack operations", () => {
  it("classifies the typed Automation API errors", () => {
    expect(
      classifyFailure(commandError("ConcurrentUpdateError", "error: the stack is currently locked by 1 lock(s)"), "tenant-acme"),
    ).toEqual({
      kind: "concurrent-update",
      message: expect.stringMatching(
        /^stack tenant-acme is locked by another operation: .*pulumi -- cancel --stack tenant-acme.*currently locked/,
      ),
    });
    expect(classifyFailure(commandError("StackNotFoundError", "error: no stack named 'tenant-acme' found"), "tenant-acme").kind).toBe(
      "stack-not-found",
    );
    expect(classifyFailure(commandError("StackAlreadyExistsError", "error: stack 'tenant-acme' already exists"), "tenant-acme").kind).toBe(
      "stack-exists",
    );
  });

  it("advises on a missing stack by what it is: a tenant stack's slug, or a platform stack to deploy", () => {
    const notFound = (stack: string) =>
      classifyFailure(commandError("StackNotFoundError", `error: no stack named '${stack}' found`), stack);
    expect(notFound("tenant-acme").message).toMatch(/is the slug right\? `npm run tenant -- list`/);
    expect(notFound("local-eu").message).toBe(
      "no stack local-eu on this backend: deploy it first (`npm run local` for the local regions, `npm run pulumi -- up --stack local-eu` for others)",
    );
  });

  it("classifies our own refusals by name", () => {
    expect(classifyFailure(new ResidencyError("tenant x has residency us"), "tenant-x")).toEqual({
      kind: "residency",
      message: "tenant x has residency us",
    });
    expect(classifyFailure(new Error("boom"), "tenant-x")).toEqual({ kind: "failed", message: "boom" });
  });

  it("keeps the specific error lines of an engine failure, not the trailer", () => {
    const stdout = [
      "Updating (tenant-acme):",
      "Diagnostics:",
      "  alphapulse:db:Tenant (acme-registry):",
      '    error: a tenant with slug "acme" already exists',
      "  pulumi:pulumi:Stack (alphapulse-tenant-tenant-acme):",
      "    error: update failed",
    ].join("\n");
    expect(pulumiErrorLines({ stdout, stderr: "error: update failed\n" })).toEqual(['a tenant with slug "acme" already exists']);
    expect(classifyFailure(commandError("CommandError", "error: update failed", stdout), "tenant-acme")).toEqual({
      kind: "failed",
      message: 'a tenant with slug "acme" already exists',
    });
    expect(pulumiErrorLines({ stdout: "", stderr: "error: update failed" })).toEqual(["update failed"]);
  });
});
