import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Real servers on 2 cores: a few files at a time keeps timings honest and failures readable.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
