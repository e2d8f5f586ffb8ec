#!/usr/bin/env node
// The one `sidekey` command. Each subcommand lives in its own module and is loaded lazily, so the agent
// process never pays for the webhook's dependencies and vice versa.

interface Subcommand {
  readonly summary: string;
  readonly load: () => Promise<{ main(argv: readonly string[]): Promise<number> }>;
}

const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  render: { summary: 'print what the webhook would do to manifests (FILE or -)', load: () => import('./render.ts') },
  webhook: { summary: 'run the mutating admission webhook', load: () => import('./webhook.ts') },
  agent: { summary: 'run the in-pod agent (config from env SIDEKEY_CONFIG)', load: () => import('./agent.ts') },
  demo: { summary: 'run the whole flow locally with the embedded file store', load: () => import('./demo.ts') },
};

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return `usage: sidekey <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function run(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`sidekey: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  const module = await command.load();
  return module.main(rest);
}

process.exitCode = await run(process.argv.slice(2));
