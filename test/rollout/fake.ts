/**
 * A fake workspace for the rollout's unit tests: platform stacks and tenant stacks that record every
 * operation in one log, fail where told to, and measure how many tenant operations ran at once.
 */
import type { PlatformContract } from "../../lib/platform/contract";
import type { PlatformOps, RecordedTenantStack, TenantOps } from "../../lib/rollout/run";
import type { TenantJob, TenantJobResult, TenantStackDriver } from "../../lib/tenant-stacks/jobs";
import { tenantStackName } from "../../lib/tenant-stacks/names";
import type { TenantStackSpec } from "../../lib/tenant-stacks/spec";

export class FakeWorkspace {
  readonly log: string[] = [];
  /** `preview:<stack>`, `update:<stack>`, `contract:<stack>`, `up:<tenant stack>`, `preview:<tenant stack>` that fail (with this message). */
  readonly failing = new Map<string, string>();
  running = 0;
  peak = 0;
  tenantMs = 5;
  readonly tenants: RecordedTenantStack[] = [];

  addTenant(slug: string, platform: string, region: TenantStackSpec["region"] = "eu"): this {
    this.tenants.push({ stack: tenantStackName(slug), spec: { slug, tier: "starter", region, platform } });
    return this;
  }

  private check(key: string): void {
    this.log.push(key);
    const failure = this.failing.get(key);
    if (failure !== undefined) throw new Error(failure);
  }

  readonly platform: PlatformOps = {
    preview: (stack) => {
      this.check(`preview:${stack}`);
      return Promise.resolve({ same: 3 });
    },
    update: (stack) => {
      this.check(`update:${stack}`);
      return Promise.resolve({ same: 2, update: 1 });
    },
    // Not logged (a read); fails when `contract:<stack>` is in `failing`.
    contract: (stack) => {
      const failure = this.failing.get(`contract:${stack}`);
      return failure === undefined ? Promise.resolve({} as PlatformContract) : Promise.reject(new Error(failure));
    },
  };

  readonly driver: TenantStackDriver = {
    run: async (job: TenantJob): Promise<TenantJobResult> => {
      const slug = job.action === "destroy" ? job.slug : job.spec.slug;
      const stack = tenantStackName(slug);
      this.running++;
      this.peak = Math.max(this.peak, this.running);
      await new Promise((r) => setTimeout(r, this.tenantMs));
      this.running--;
      const base = { slug, stack, action: job.action, durationMs: this.tenantMs, changes: {} };
      try {
        this.check(`${job.action}:${stack}`);
        return { ...base, ok: true, changes: { same: 4 } };
      } catch (err) {
        return { ...base, ok: false, failure: { kind: "failed", message: (err as Error).message } };
      }
    },
  };

  get tenantOps(): TenantOps {
    return { list: () => Promise.resolve(structuredClone(this.tenants)), driver: this.driver };
  }
}
