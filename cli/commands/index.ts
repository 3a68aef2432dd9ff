/** Every `tenancy` command, one file each. Adding a command: write the file, add it here. */
import type { Command } from "../tenancy";
import { auditCommand } from "./audit";
import { cacheGrantCommand } from "./cache-grant";
import { cacheRevokeCommand } from "./cache-revoke";
import { cacheUsageCommand } from "./cache-usage";
import { migrateCommand } from "./migrate";
import { pgbouncerRenderCommand } from "./pgbouncer-render";
import { seedCommand } from "./seed";
import { slowCommand } from "./slow";
import { tenantCreateCommand } from "./tenant-create";
import { tenantDeleteCommand } from "./tenant-delete";
import { tenantListCommand } from "./tenant-list";
import { tenantShowCommand } from "./tenant-show";
import { topCommand } from "./top";
import { capacityCommand } from "./capacity";
import { tenantDemoteCommand } from "./tenant-demote";
import { tenantExportCommand } from "./tenant-export";
import { tenantGraduateCommand } from "./tenant-graduate";
import { tenantImportCommand } from "./tenant-import";
import { tenantLoginRoleCommand } from "./tenant-login-role";
import { tenantRestoreCommand } from "./tenant-restore";
import { tenantResumeCommand, tenantSuspendCommand } from "./tenant-suspend";

export const commands: Command[] = [
  // data layer (issue 2)
  migrateCommand,
  tenantCreateCommand,
  tenantListCommand,
  tenantShowCommand,
  tenantSuspendCommand,
  tenantResumeCommand,
  tenantDeleteCommand,
  seedCommand,
  auditCommand,
  // Redis tenancy (issue 5)
  cacheGrantCommand,
  cacheRevokeCommand,
  cacheUsageCommand,
  // PgBouncer (issue 4)
  pgbouncerRenderCommand,
  // per-tenant observability (issue 10)
  topCommand,
  slowCommand,
  // enterprise schemas, moves, export/import, PITR (issue 6)
  tenantGraduateCommand,
  tenantDemoteCommand,
  tenantLoginRoleCommand,
  capacityCommand,
  tenantExportCommand,
  tenantImportCommand,
  tenantRestoreCommand,
];
