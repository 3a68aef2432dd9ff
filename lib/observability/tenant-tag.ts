/**
 * The tenant tag of a transaction: `application_name = tenant:<log tag>`, set transaction-locally by
 * tenancy.enter_tenant() (lib/schema/current.sql; since migration 0004). The log tag is random and opaque; only the registry maps
 * it to a tenant. Kept in its own module (no imports) so the postgresql.conf renderers and the
 * Pulumi components can use it without loading the data-layer library.
 */
export const TENANT_TAG_PREFIX = "tenant:";
