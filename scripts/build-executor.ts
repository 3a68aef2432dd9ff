/**
 * `npm run build:executor -- [--out <file>] [--json]`: bundles the database executor's Lambda handler
 * (lib/executor/handler.ts) into `.build/executor/index.js` (lib/executor/bundle.ts), the artifact
 * components/aws/executor.ts deploys. Run it before `pulumi up` on an AWS region.
 */
import { entryPoint, runMain } from "../cli/runner";
import { buildExecutorBundle, EXECUTOR_BUNDLE_PATH } from "../lib/executor/bundle";
import { REPO_ROOT } from "../lib/pulumi/env";

const USAGE = "usage: npm run build:executor -- [--out <file>] [--json]";

const main = entryPoint({
  program: "build-executor",
  usage: USAGE,
  options: { out: { type: "string" } },
  async run({ values, out }) {
    const result = await buildExecutorBundle(REPO_ROOT, values.out ?? EXECUTOR_BUNDLE_PATH);
    out.result(result, () => `${result.file}: ${(result.bytes / 1024).toFixed(0)} KiB, sha256 ${result.sha256.slice(0, 16)}…`);
    return 0;
  },
});

if (require.main === module) runMain(main);
