// A real moto server (AWS Secrets Manager + STS wire protocol) on 127.0.0.1 for tests, the pod-level e2e
// tests and the demo's --backend aws. Installed by `npm run setup` into .tools/venv.
//
//   const moto = await startMoto();
//   moto.env          // env for a process that should talk to it: endpoint override, region, static test keys
//   moto.admin        // a SecretsManagerClient to create/rotate secrets
//   await moto.stop();
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { join } from 'node:path';
import { VENV_BIN, answers, freePort, requireTool, startProcess, waitUntil } from '../process.ts';
import type { ManagedProcess } from '../process.ts';

export const MOTO_REGION = 'us-east-1';
/** moto's default account id: ARNs look like arn:aws:secretsmanager:us-east-1:123456789012:secret:name-AbCdEf */
export const MOTO_ACCOUNT = '123456789012';

/** The process env of the SDK's web-identity (IRSA) credentials against moto, which accepts any token. */
export function irsaEnv(tokenFile: string, sessionName: string): Record<string, string> {
  return {
    AWS_ROLE_ARN: `arn:aws:iam::${MOTO_ACCOUNT}:role/app`,
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ROLE_SESSION_NAME: sessionName,
  };
}

export interface MotoHandle {
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  /**
   * Environment for an agent (or any AWS SDK v3 process) using this server: AWS_ENDPOINT_URL (honoured by
   * the SDK for every service, STS included), AWS_REGION and static test credentials. For IRSA, drop the
   * static keys and add AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (moto accepts any token).
   */
  readonly env: Readonly<Record<string, string>>;
  readonly admin: SecretsManagerClient;
  readonly process: ManagedProcess;
  /** Drops every secret and role (moto's reset API). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export interface MotoOptions {
  /** Serve https with this certificate (PEM files, e.g. a leaf of test-ca.ts); the caller makes its CA trusted. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

export async function startMoto(options: MotoOptions = {}): Promise<MotoHandle> {
  const binary = requireTool(join(VENV_BIN, 'moto_server'), 'moto_server (PyPI moto[server])');
  const port = await freePort();
  const endpoint = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  const tlsArgs = options.tls === undefined ? [] : ['-c', options.tls.certFile, '-k', options.tls.keyFile];
  const proc = startProcess(binary, ['-H', '127.0.0.1', '-p', String(port), ...tlsArgs], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      MOTO_ALLOW_NONEXISTENT_REGION: 'true',
    },
  });
  await waitUntil('moto_server', proc, () => answers(`${endpoint}/moto-api/`));
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: MOTO_REGION,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
  const admin = new SecretsManagerClient({
    region: MOTO_REGION,
    endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  return {
    endpoint,
    port,
    region: MOTO_REGION,
    env,
    admin,
    process: proc,
    async reset(): Promise<void> {
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
    },
    async stop(): Promise<void> {
      admin.destroy();
      await proc.stop();
    },
  };
}
