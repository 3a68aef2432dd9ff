/**
 * Failures of stack operations, classified once so that the CLI, the bulk runner and the rollout
 * report them the same way. The Automation API throws typed errors (StackNotFoundError,
 * StackAlreadyExistsError, ConcurrentUpdateError, all CommandError subclasses carrying the CLI's
 * output); they are recognised here by their `name`, so this module stays pure and a failure that
 * crossed a process boundary (the bulk worker) classifies the same way.
 */

import { slugOfTenantStack } from "./names";

export const FAILURE_KINDS = [
  /** The tenant's region differs from the platform stack's residency: refused before any change. */
  "residency",
  /** The platform stack is missing, not deployed, or its outputs break the platform contract (lib/platform/contract.ts). */
  "platform",
  /** Another operation holds the stack's lock (ConcurrentUpdateError). */
  "concurrent-update",
  /** The stack does not exist (StackNotFoundError). */
  "stack-not-found",
  /** The stack exists where a new one was required (StackAlreadyExistsError). */
  "stack-exists",
  /** Invalid input that reached the operation (a tenant stack whose config no longer parses). */
  "input",
  /** The offboarding export failed: nothing was deleted. */
  "export",
  /** Not started because an earlier operation failed (rollout halts at the first failure). */
  "skipped",
  /** Anything else: the engine or a provider reported an error. */
  "failed",
] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export interface StackFailure {
  kind: FailureKind;
  message: string;
}

interface CommandResultLike {
  stdout?: string;
  stderr?: string;
  code?: number;
}

const KIND_BY_NAME: Record<string, FailureKind> = {
  ConcurrentUpdateError: "concurrent-update",
  StackNotFoundError: "stack-not-found",
  StackAlreadyExistsError: "stack-exists",
  ResidencyError: "residency",
  PlatformStackError: "platform",
  PlatformContractError: "platform",
  TenantSpecError: "input",
  TenantExportError: "export",
};

/**
 * The lines of a Pulumi CLI run that say what went wrong: `error:` lines from stderr and from the
 * diagnostics on stdout, without the generic trailer when something more specific is there.
 */
export function pulumiErrorLines(result: CommandResultLike): string[] {
  const text = `${result.stdout ?? ""}\n${result.stderr ?? ""}`;
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^error:/i.test(l))
    .map((l) => l.replace(/^error:\s*/i, ""));
  const unique = [...new Set(lines)];
  const specific = unique.filter((l) => !/^update failed$|^preview failed$|^destroy failed$|^an unhandled error occurred/i.test(l));
  return specific.length ? specific : unique;
}

/** A one-paragraph description of a failure, naming the stack, with advice where there is one. */
export function classifyFailure(err: unknown, stack: string): StackFailure {
  const e = err as { name?: string; message?: string; commandResult?: CommandResultLike } | undefined;
  const kind = KIND_BY_NAME[e?.name ?? ""] ?? "failed";
  const detail = e?.commandResult ? pulumiErrorLines(e.commandResult).join("; ") || firstLine(e.message) : (e?.message ?? String(err));
  switch (kind) {
    case "concurrent-update":
      return {
        kind,
        message: `stack ${stack} is locked by another operation: wait for it to finish, or run \`npm run pulumi -- cancel --stack ${stack}\` if it crashed (${detail})`,
      };
    case "stack-not-found":
      return {
        kind,
        message: slugOfTenantStack(stack)
          ? `no stack ${stack}: nothing to do (is the slug right? \`npm run tenant -- list\`)`
          : `no stack ${stack} on this backend: deploy it first (\`npm run local\` for the local regions, \`npm run pulumi -- up --stack ${stack}\` for others)`,
      };
    case "stack-exists":
      return { kind, message: `stack ${stack} already exists (${detail})` };
    default:
      return { kind, message: detail };
  }
}

function firstLine(text: string | undefined): string {
  return (
    (text ?? "")
      .split("\n")
      .find((l) => l.trim())
      ?.trim() ?? ""
  );
}
