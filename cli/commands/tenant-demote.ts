/** `tenancy tenant demote <slug>`: moves a dedicated tenant back to the shared tables (lib/enterprise/graduation.ts). */
import { demoteTenant } from "../../lib/enterprise/graduation";
import type { Command } from "../command";
import { MOVE_OPTIONS, moveOptions, runMove, tenantRef } from "./common";

export const tenantDemoteCommand: Command = {
  words: ["tenant", "demote"],
  summary: "move a dedicated tenant back to the shared tables and drop its schema (resumable, verified)",
  usage: "tenant demote <slug> [--gate-timeout-ms N]",
  options: MOVE_OPTIONS,
  async run(ctx) {
    tenantRef(ctx);
    return runMove(ctx, demoteTenant, moveOptions(ctx));
  },
};
