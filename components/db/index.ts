export * from "./database";
export * from "./database-schema";
export * from "./pgbouncer-auth-file";
export * from "./regional-database";
export * from "./tenant";
export type { DatabaseConnection } from "./provider-runtime";
