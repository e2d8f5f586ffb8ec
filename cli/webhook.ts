// `sidekey webhook`: the mutating admission webhook. Configuration from --config FILE, SIDEKEY_* env and
// flags; pino JSON logs on stdout; drains on SIGTERM.
import { readFileSync } from 'node:fs';
import { destination, pino } from 'pino';
import { createMetrics } from '../webhook/metrics.ts';
import { PARSE_OPTIONS, loadConfig, settingsUsage } from '../webhook/options.ts';
import { startWebhook } from '../webhook/server.ts';
import { checkNativeSidecars } from '../webhook/sidecar-mode.ts';
import { parseCommandLine } from './args.ts';

const LOG_BUFFER_BYTES = 4096;
const LOG_FLUSH_MS = 1000;

const USAGE = `usage: sidekey webhook [--config FILE] [options]

Serves POST /mutate (AdmissionReview v1), /healthz and /readyz over HTTPS, and /metrics over HTTP.

options:
  --config FILE          YAML/JSON configuration (env SIDEKEY_CONFIG_FILE)
${settingsUsage()}
`;

export async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine(argv, PARSE_OPTIONS, false);
  if (!parsed.ok) {
    process.stderr.write(`sidekey webhook: ${parsed.error}\n${USAGE}`);
    return 2;
  }
  const flags: Record<string, string | boolean | undefined> = parsed.values;
  if (flags['help'] === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const loaded = loadConfig({ flags, env: process.env, readFile: (p) => readFileSync(p, 'utf8') });
  if (!loaded.ok) {
    process.stderr.write(`sidekey webhook: ${loaded.error}\n`);
    return 2;
  }
  const config = loaded.value;
  // Buffered, asynchronous writes: an admission never waits for whoever reads stdout, and at hundreds of
  // admissions per second lines go out 4 KiB at a time instead of one write (and one wake-up of the reader)
  // each. A line waits at most a second; pino writes what is left when the process exits.
  const log = pino(
    { level: config.logLevel, base: { component: 'webhook' } },
    destination({ dest: 1, sync: false, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MS }),
  );
  const unsupported = await checkNativeSidecars(config.sidecarMode, { env: process.env, log });
  if (unsupported !== undefined) {
    log.fatal({ event: 'start_failed', err: { message: unsupported } }, 'webhook failed to start');
    return 1;
  }
  let webhook;
  try {
    webhook = await startWebhook({ config, log, metrics: createMetrics() });
  } catch (err) {
    log.fatal({ event: 'start_failed', err: { message: (err as Error).message } }, 'webhook failed to start');
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ event: 'signal', signal }, 'shutting down');
      webhook.drain().then(resolve, resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info({ event: 'stopped' }, 'webhook stopped');
  return 0;
}
