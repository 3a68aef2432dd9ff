/** PgBouncer as code: config schema and renderer, auth file, pool arithmetic. */
export * from "./auth";
export * from "./config";
export * from "./pool-budget";
