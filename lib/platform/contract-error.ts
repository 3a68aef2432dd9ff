/**
 * The error of lib/platform/contract.ts, in a file of its own: cli/runner.ts maps it to exit 2, and
 * the runner is part of the executor's bundle (a `tenancy` command runs there), which must not
 * load @pulumi/pulumi as contract.ts does.
 */

/** A platform stack's outputs that do not fulfil the contract; names the stack and the output. */
export class PlatformContractError extends Error {
  constructor(
    message: string,
    readonly stack: string,
    /** Dotted path of the output at fault (`database.oid`), or undefined when there are no outputs at all. */
    readonly output: string | undefined,
  ) {
    super(message);
    this.name = "PlatformContractError";
  }
}
