#!/usr/bin/env node
// The `tenancy` CLI. TypeScript sources run through tsx's require hook: no build step after `npm ci`.
require("tsx/cjs");
require("../cli/tenancy.ts").run(process.argv.slice(2));
