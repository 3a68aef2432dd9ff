/**
 * The tenants of a regional config keep the Redis user and secret the regional stack declared before
 * tenant stacks existed: same logical names (so an upgrade of the region changes nothing for them)
 * and retained on delete, so removing a tenant from the config forgets them in this stack and leaves
 * them in AWS for its tenant stack to import (docs/tenant-stacks.md "Moving a regional tenant").
 * Before this, an upgrade deleted such a tenant's user: applications lost their cache login.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { RedisCache, type RedisCacheArgs } from "../../components/aws/redis-cache";
import { renderTenantAcl } from "../../lib/redis/acl";
import { record, T, type Recorded } from "./harness";

const KEY = "arn:aws:kms:eu-central-1:111111111111:key/k";
const TENANT = { id: "1d7499b2-0c1e-4f32-8233-b121324410da", slug: "acme-capital" };
const args: RedisCacheArgs = {
  region: "eu-central-1",
  vpcId: "vpc-1",
  subnetIds: ["subnet-a", "subnet-b"],
  availabilityZones: ["eu-central-1a", "eu-central-1b"],
  clientSecurityGroupIds: ["sg-app"],
  kmsKeyArn: KEY,
  alarmTopicArn: "arn:aws:sns:eu-central-1:111111111111:alarms",
  nodeType: "cache.r7g.large",
  secretNamePrefix: "alphapulse/test/redis",
  regionalTenants: [TENANT],
};

let rec: Recorded;
beforeAll(async () => {
  rec = await record((provider) => new RedisCache("cache", args, { providers: { aws: provider } }));
});

describe("RedisCache with tenants of the regional config", () => {
  const acl = renderTenantAcl(TENANT.id);

  it("declares the tenant's user under its historical name, with the renderer's access string, retained on delete", () => {
    const user = rec.get(T.ecUser, `cache-tenant-${TENANT.slug}`);
    expect(user.inputs).toMatchObject({ userId: acl.elasticacheUserId, userName: acl.userName, accessString: acl.accessString });
    expect([user.protect, user.retainOnDelete]).toEqual([false, true]);
  });

  it("its password, secret and value are retained on delete and the secret stays protected (a removal forgets them, never deletes them)", () => {
    const prefix = `cache-tenant-${TENANT.slug}`;
    const children = rec.all.filter((r) => r.name.startsWith(`${prefix}-`));
    expect(children.map((r) => [r.type, r.name, r.protect, r.retainOnDelete]).sort()).toEqual(
      [
        ["random:index/randomPassword:RandomPassword", `${prefix}-password`, false, true],
        [T.secret, `${prefix}-secret`, true, true],
        [T.secretVersion, `${prefix}-value`, false, true],
      ].sort(),
    );
    expect(rec.get(T.secret, `${prefix}-secret`).inputs).toMatchObject({
      name: `alphapulse/test/redis/tenants/${TENANT.slug}`,
      kmsKeyId: KEY,
      recoveryWindowInDays: 30,
    });
  });

  it("the user group lists it from the start and ignores later membership changes", () => {
    const group = rec.get(T.ecUserGroup, "cache-users");
    expect(group.inputs.userIds).toEqual(["cache-default", "cache-admin", acl.elasticacheUserId]);
    expect(group.ignoreChanges).toEqual(["userIds"]);
  });

  it("the admin secret is protected and not retained (only the regional tenants' credentials are also retained)", () => {
    const admin = rec.get(T.secret, "cache-admin-secret");
    expect([admin.protect, admin.retainOnDelete]).toEqual([true, false]);
  });
});
