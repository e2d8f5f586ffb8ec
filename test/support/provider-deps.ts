// ProviderDeps for provider tests: a minimal valid agent config, a pino logger writing into memory (so tests
// can assert that no secret value reached a log line), and a record of countCall().
import { pino } from 'pino';
import { Writable } from 'node:stream';
import type { AgentConfig } from '../../injector/agent-config.ts';
import type { Provider } from '../../injector/reference.ts';
import type { ProviderDeps } from '../../agent/provider.ts';

export interface TestDeps {
  readonly deps: ProviderDeps;
  /** Backend calls counted so far, as "provider:Operation". */
  readonly calls: string[];
  /** Everything logged so far (JSON lines). */
  readonly logs: () => string;
}

export function testDeps(
  overrides: Partial<Pick<AgentConfig, 'aws' | 'vault'>>,
  env: Readonly<Record<string, string | undefined>> = {},
): TestDeps {
  const config: AgentConfig = {
    version: 1,
    mode: 'sidecar',
    role: 'run',
    secretsDir: '/tmp/sidekey-test-secrets',
    port: 8099,
    fileMode: 0o400,
    files: [{ name: 'unused', ref: { provider: 'file', path: 'unused' } }],
    reload: { kind: 'none' },
    ...overrides,
  };
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      text += chunk.toString('utf8');
      callback();
    },
  });
  const calls: string[] = [];
  return {
    deps: {
      config,
      env,
      log: pino({ level: 'debug' }, sink),
      now: () => Date.now(),
      countCall: (provider: Provider, operation: string) => calls.push(`${provider}:${operation}`),
    },
    calls,
    logs: () => text,
  };
}
