#!/usr/bin/env node
// `sidekey` from a source checkout (the package's bin, `npm run demo`): the shipped subcommands and `demo`,
// which runs the pod with the local pod runner and backends of devkit/. Release bundles are built from
// cli/release.ts, which never imports the demo.
import { DEMO_SUMMARY, SHIPPED_SUBCOMMANDS, runCommand } from './commands.ts';

process.exitCode = await runCommand(
  { ...SHIPPED_SUBCOMMANDS, demo: { summary: DEMO_SUMMARY, load: () => import('./demo.ts') } },
  process.argv.slice(2),
);
