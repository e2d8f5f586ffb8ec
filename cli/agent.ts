// `sidekey agent`: the in-pod agent. Configuration comes from env SIDEKEY_CONFIG (built by the webhook, see
// injector/agent-config.ts); logs are pino JSON lines on stdout (level from SIDEKEY_LOG_LEVEL, default info).
// Exit codes: 0 done (init) or stopped cleanly (run); 1 init failed or the agent could not start; 2 bad usage
// or configuration.
import { pino } from 'pino';
import { parseAgentConfig } from '../injector/agent-config.ts';
import { CONFIG_ENV } from '../injector/constants.ts';
import { runAgent } from '../agent/agent.ts';

const USAGE = `usage: sidekey agent [--revoke-on-exit]

Runs the secret agent with the configuration in env ${CONFIG_ENV}.
  --revoke-on-exit   on SIGTERM, revoke leases and the backend token (also env SIDEKEY_REVOKE_ON_EXIT=true);
                     role run only: an init role agent (init-only) leaves them to the app it wrote them for
`;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export async function main(argv: readonly string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--revoke-on-exit');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (unknown.length > 0) {
    process.stderr.write(`sidekey agent: unknown argument "${unknown[0] ?? ''}"\n${USAGE}`);
    return 2;
  }
  const parsed = parseAgentConfig(process.env[CONFIG_ENV] ?? '');
  if (!parsed.ok) {
    process.stderr.write(
      `sidekey agent: ${process.env[CONFIG_ENV] === undefined ? `env ${CONFIG_ENV} is not set` : parsed.error}\n`,
    );
    return 2;
  }
  const requested = process.env.SIDEKEY_LOG_LEVEL ?? 'info';
  const log = pino(
    {
      name: 'sidekey-agent',
      level: LOG_LEVELS.includes(requested) ? requested : 'info',
      base: { role: parsed.value.role, mode: parsed.value.mode },
    },
    pino.destination({ dest: 1, sync: true }),
  );
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'signal received');
    controller.abort();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    return await runAgent({
      config: parsed.value,
      env: process.env,
      log,
      stop: controller.signal,
      revokeOnExit: argv.includes('--revoke-on-exit') || process.env.SIDEKEY_REVOKE_ON_EXIT === 'true',
    });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}
