/**
 * `tenancy tenant graduate <slug>`: moves an Enterprise tenant from the shared tables to its own
 * schema (lib/enterprise/graduation.ts). Holds only that tenant's writes, only for the cutover; verifies every
 * table before flipping; safe to kill and run again (it resumes). Progress on stderr; the result
 * says how long the tenant's writes were held and the rows per second.
 *
 * TENANCY_FAILPOINT=<point> kills the process at that point (crash tests, docs/enterprise.md).
 */
import { graduateTenant } from "../../lib/enterprise/graduation";
import type { Command } from "../command";
import { MOVE_OPTIONS, moveOptions, runMove, tenantRef } from "./common";

export const tenantGraduateCommand: Command = {
  words: ["tenant", "graduate"],
  summary: "move an enterprise tenant from the shared tables to its own schema (resumable, verified)",
  usage: "tenant graduate <slug> [--gate-timeout-ms N]",
  options: MOVE_OPTIONS,
  async run(ctx) {
    tenantRef(ctx);
    return runMove(ctx, graduateTenant, moveOptions(ctx));
  },
};
