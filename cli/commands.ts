// The subcommands every `sidekey` has (also `kubectl sidekey` when installed as kubectl-sidekey) and the
// dispatcher of both entry points: cli/sidekey.ts (a source checkout, which adds `demo`) and cli/release.ts
// (the bundled CLI). Each subcommand lives in its own module and is loaded lazily, so the agent process never
// pays for the webhook's dependencies and vice versa.
import { basename } from 'node:path';
import packageJson from '../package.json' with { type: 'json' };

export interface Subcommand {
  readonly summary: string;
  readonly load: () => Promise<{ main(argv: readonly string[]): Promise<number> }>;
}

export type Subcommands = Readonly<Record<string, Subcommand>>;

export const SHIPPED_SUBCOMMANDS: Subcommands = {
  render: {
    summary: 'print what the webhook would do to manifests (-f FILE|DIR|-)',
    load: () => import('./render.ts'),
  },
  lint: {
    summary: 'check the sidekey.io annotations of manifests, print only problems',
    load: async () => ({ main: (await import('./render.ts')).lintMain }),
  },
  migrate: {
    summary: 'rewrite vault-k8s annotations of manifests into sidekey.io ones (FILE|DIR|-)',
    load: () => import('./migrate.ts'),
  },
  webhook: { summary: 'run the mutating admission webhook', load: () => import('./webhook.ts') },
  agent: { summary: 'run the in-pod agent (config from env SIDEKEY_CONFIG)', load: () => import('./agent.ts') },
  status: {
    summary: 'show which injected pods have fresh, stale or failing secrets (-n NS | -A, [POD])',
    load: () => import('./status.ts'),
  },
};

export const DEMO_SUMMARY = 'run the whole flow locally with the embedded file store';

/** How the user called us: kubectl runs a plugin as kubectl-sidekey. */
const PROGRAM = basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl sidekey' : 'sidekey';

function usage(subcommands: Subcommands): string {
  const lines = Object.entries(subcommands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: ${PROGRAM} <command> [options]\n       ${PROGRAM} --version\n\ncommands:\n${lines.join('\n')}\n\n'${PROGRAM} <command> --help' lists a command's options.\n`;
}

/** Runs the subcommand argv names; returns the exit code. */
export async function runCommand(subcommands: Subcommands, argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(subcommands));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`sidekey ${packageJson.version}\n`);
    return 0;
  }
  const command = subcommands[name];
  if (command === undefined) {
    process.stderr.write(
      `${PROGRAM}: ${name.startsWith('-') ? `unknown option "${name}"` : `unknown command "${name}"`}\n${usage(subcommands)}`,
    );
    return 2;
  }
  const module = await command.load();
  return module.main(rest);
}
