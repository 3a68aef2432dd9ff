/** Every `tenancy` command, one file each. Adding a command: write the file, add it here. */
import type { Command } from "../command";
import { auditCommand } from "./audit";
import { contextKeyInstallCommand, contextKeyListCommand, contextKeyRetireCommand } from "./context-key";
import { cacheGrantCommand } from "./cache-grant";
import { cacheRevokeCommand } from "./cache-revoke";
import { cacheUsageCommand } from "./cache-usage";
import { migrateCommand } from "./migrate";
import { pgbouncerRenderCommand } from "./pgbouncer-render";
import { seedCommand } from "./seed";
import { slowCommand } from "./slow";
import { tenantCreateCommand } from "./tenant-create";
import { tenantDeleteCommand } from "./tenant-delete";
import { tenantPurgeCommand } from "./tenant-purge";
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
  // the database and the tenant lifecycle
  migrateCommand,
  tenantCreateCommand,
  tenantListCommand,
  tenantShowCommand,
  tenantSuspendCommand,
  tenantResumeCommand,
  tenantDeleteCommand,
  tenantPurgeCommand,
  seedCommand,
  auditCommand,
  // the verified tenant context's keys (ADR-005)
  contextKeyInstallCommand,
  contextKeyRetireCommand,
  contextKeyListCommand,
  // Enterprise: dedicated schemas, moves, export/import, point-in-time restore
  tenantGraduateCommand,
  tenantDemoteCommand,
  tenantLoginRoleCommand,
  capacityCommand,
  tenantExportCommand,
  tenantImportCommand,
  tenantRestoreCommand,
  // Redis
  cacheGrantCommand,
  cacheRevokeCommand,
  cacheUsageCommand,
  // PgBouncer
  pgbouncerRenderCommand,
  // per-tenant observability
  topCommand,
  slowCommand,
];
