// A real PostgreSQL (Debian package, installed by `npm run setup`) in a temp dir on 127.0.0.1, for the Vault
// database secrets engine (dynamic credentials). PostgreSQL refuses to run as root, so under root the data
// dir is given to `nobody` and initdb/postgres run through setpriv.
//
//   const pg = await startPostgres();
//   pg.vaultConnectionUrl   // for database/config/<name> connection_url (username/password go alongside)
//   await pg.query('SELECT 1', { user, password })   // runs psql as that login (proves dynamic creds work)
//   await pg.stop();        // stops the server and removes the data dir
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { postgresBinDir } from '../../scripts/setup-tools.ts';
import { freePort, startProcess, waitUntil } from '../process.ts';
import type { ManagedProcess } from '../process.ts';

const run = promisify(execFile);
const NOBODY = 65_534;

export interface PostgresHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly superuser: 'postgres';
  readonly superuserPassword: string;
  /** `postgresql://{{username}}:{{password}}@127.0.0.1:PORT/postgres?sslmode=disable` (Vault's template form). */
  readonly vaultConnectionUrl: string;
  readonly process: ManagedProcess;
  /** Runs one SQL statement through psql as the given login; resolves to psql's unaligned output. */
  query(sql: string, login?: { user: string; password: string }): Promise<string>;
  stop(): Promise<void>;
}

function binDirOrThrow(): string {
  const dir = postgresBinDir();
  if (dir === undefined) {
    throw new Error('PostgreSQL binaries are missing (/usr/lib/postgresql/*/bin): run "npm run setup" first');
  }
  return dir;
}

/** Wraps a command so it runs as `nobody` when we are root. */
function asServiceUser(command: string, args: readonly string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [command, [...args]];
  return ['setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', command, ...args]];
}

export async function startPostgres(): Promise<PostgresHandle> {
  const bin = binDirOrThrow();
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-pg-'));
  const password = randomBytes(16).toString('hex');
  const data = join(dir, 'data');
  writeFileSync(join(dir, 'pw'), password, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    chownSync(dir, NOBODY, NOBODY);
    chownSync(join(dir, 'pw'), NOBODY, NOBODY);
  }
  const [initCmd, initArgs] = asServiceUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${join(dir, 'pw')}`,
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  try {
    await run(initCmd, initArgs, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(error as Error).message}`, { cause: error });
  }
  const port = await freePort();
  const [pgCmd, pgArgs] = asServiceUser(join(bin, 'postgres'), [
    '-D',
    data,
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'fsync=off',
    '-c',
    'max_connections=50',
  ]);
  // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients (Vault keeps a pool open).
  const proc = startProcess(
    pgCmd,
    pgArgs,
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } },
    'SIGINT',
  );
  const isReady = async (): Promise<boolean> => {
    await run(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
    return true;
  };
  try {
    await waitUntil('postgres', proc, isReady);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host: '127.0.0.1',
    port,
    superuser: 'postgres',
    superuserPassword: password,
    vaultConnectionUrl: `postgresql://{{username}}:{{password}}@127.0.0.1:${port}/postgres?sslmode=disable`,
    process: proc,
    async query(sql, login = { user: 'postgres', password }): Promise<string> {
      const { stdout } = await run(
        join(bin, 'psql'),
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          login.user,
          '-d',
          'postgres',
          '-At',
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          sql,
        ],
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: login.password, PGCONNECT_TIMEOUT: '5' } },
      );
      return stdout.trim();
    },
    async stop(): Promise<void> {
      await proc.stop(10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
