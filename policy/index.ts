/**
 * The AlphaPulse platform policy pack for real previews:
 *
 *   npm run pulumi -- preview --stack eu-prod --policy-pack policy
 *
 * Each rule of policy/rules.ts becomes a stack policy (mandatory): the same predicates the offline
 * check runs over the synth JSON. The residency comes from the pack config (`residency: eu|us`,
 * via --policy-pack-config) or else from the stack's AWS provider default tags; a stack whose
 * residency cannot be determined fails the region rule.
 */
import { PolicyPack, type StackValidationPolicy } from "@pulumi/policy";
import { RULES } from "./rules";
import { residencyFromProviders, viewsFromPolicy } from "./views";
import { ResidencyRegion } from "../lib/tenant/model";

const policies: StackValidationPolicy[] = RULES.map((rule) => ({
  name: rule.id,
  description: rule.description,
  enforcementLevel: "mandatory",
  configSchema: { properties: { residency: { type: "string", enum: ["eu", "us"] } } },
  validateStack: (args, reportViolation) => {
    const views = viewsFromPolicy(args.resources);
    const configured = ResidencyRegion.safeParse(args.getConfig<{ residency?: string }>().residency);
    const residency = configured.success ? configured.data : residencyFromProviders(views);
    if (residency === undefined) {
      reportViolation(
        "cannot determine the stack's residency: set the pack config `residency` or the providers' alphapulse:residency default tag",
      );
      return;
    }
    for (const v of rule.check(views, { residency })) reportViolation(`${v.type} "${v.name}": ${v.message}`, v.urn);
  },
}));

new PolicyPack("alphapulse-platform", { policies });
