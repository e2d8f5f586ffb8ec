// The bundled `sidekey` (dist/sidekey.mjs, the npm package): the shipped subcommands. `demo` needs devkit/,
// which releases do not carry, so here it only says where it runs.
import { DEMO_SUMMARY, SHIPPED_SUBCOMMANDS, runCommand } from './commands.ts';

function demoFromSource(): Promise<number> {
  process.stderr.write(
    'sidekey demo runs from a source checkout (npm install && npm run demo): it uses the local pod runner in devkit/, which release bundles do not ship.\n',
  );
  return Promise.resolve(2);
}

process.exitCode = await runCommand(
  { ...SHIPPED_SUBCOMMANDS, demo: { summary: DEMO_SUMMARY, load: () => Promise.resolve({ main: demoFromSource }) } },
  process.argv.slice(2),
);
