#!/usr/bin/env node
// The one `sidekey` command (also `kubectl sidekey` when installed as kubectl-sidekey). Each subcommand
// lives in its own module and is loaded lazily, so the agent process never pays for the webhook's
// dependencies and vice versa.
import { basename } from 'node:path';
import packageJson from '../package.json' with { type: 'json' };

interface Subcommand {
  readonly summary: string;
  readonly load: () => Promise<{ main(argv: readonly string[]): Promise<number> }>;
}

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  render: { summary: 'print what the webhook would do to manifests (-f FILE|DIR|-)', load: () => import('./render.ts') },
  lint: { summary: 'check the sidekey.io annotations of manifests, print only problems', load: async () => ({ main: (await import('./render.ts')).lintMain }) },
  webhook: { summary: 'run the mutating admission webhook', load: () => import('./webhook.ts') },
  agent: { summary: 'run the in-pod agent (config from env SIDEKEY_CONFIG)', load: () => import('./agent.ts') },
  demo: { summary: 'run the whole flow locally with the embedded file store', load: () => import('./demo.ts') },
};

/** How the user called us: kubectl runs a plugin as kubectl-sidekey. */
const PROGRAM = basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl sidekey' : 'sidekey';

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: ${PROGRAM} <command> [options]\n       ${PROGRAM} --version\n\ncommands:\n${lines.join('\n')}\n\n'${PROGRAM} <command> --help' lists a command's options.\n`;
}

async function run(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`sidekey ${packageJson.version}\n`);
    return 0;
  }
  const command = SUBCOMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`${PROGRAM}: ${name.startsWith('-') ? `unknown option "${name}"` : `unknown command "${name}"`}\n${usage()}`);
    return 2;
  }
  const module = await command.load();
  return module.main(rest);
}

process.exitCode = await run(process.argv.slice(2));
