// A stand-in app for pod-level tests and the demo (Node). It reads every file in its secrets directory and
// keeps only fingerprints (sha256, 16 hex), never values; it re-reads on SIGHUP and on POST /reload, and
// reports what it saw on GET /status so a test can check "same PID, new value, exactly one reload".
// Optionally (APP_PG_FILE) it connects to PostgreSQL with the URL in that file at every (re)load, and (APP_TLS_PORT)
// it serves TLS with the certificate and key files APP_TLS_CERT and APP_TLS_KEY, swapping in the new pair at every
// reload (server.setSecureContext: no restart, connections open on the old certificate carry on).
//
// env: APP_SECRETS_DIR (default /var/run/secrets/sidekey), APP_PORT (8080), APP_HOST (127.0.0.1; 0.0.0.0 in a
// cluster, where the test reads /status through the apiserver's pod proxy), APP_ONCE=1 (read, print, exit 0
// when every APP_EXPECT file is present, else 1), APP_EXPECT (comma list), APP_PG_FILE, APP_PSQL, APP_TLS_PORT,
// APP_TLS_CERT (default tls.crt), APP_TLS_KEY (default tls.key).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { readSecrets } from './secrets-dir.ts';
import type { DbCheck, Status } from './secrets-dir.ts';

const dir = process.env.APP_SECRETS_DIR ?? '/var/run/secrets/sidekey';
const expected = (process.env.APP_EXPECT ?? '').split(',').filter((s) => s !== '');
const run = promisify(execFile);

const status: Status = {
  app: 'node',
  pid: process.pid,
  uid: process.getuid?.() ?? -1,
  loads: 0,
  reloads: 0,
  reasons: [],
  files: {},
};

async function checkDb(file: string): Promise<DbCheck> {
  if (status.files[file] === undefined) return { ok: false, error: `${file} missing` };
  const url = readFileSync(join(dir, file), 'utf8').trim();
  try {
    const { stdout } = await run(process.env.APP_PSQL ?? 'psql', [url, '-Atc', 'select current_user'], {
      env: { PGCONNECT_TIMEOUT: '5' },
    });
    return { ok: true, user: stdout.trim() };
  } catch {
    return { ok: false, error: 'connection failed' };
  }
}

let tlsServer: TlsServer | undefined;

/** Serves (or goes on serving with) the certificate and key on disk; answers each connection with "tls ok". */
function serveTls(port: number): void {
  const pair = {
    cert: readFileSync(join(dir, process.env.APP_TLS_CERT ?? 'tls.crt')),
    key: readFileSync(join(dir, process.env.APP_TLS_KEY ?? 'tls.key')),
  };
  if (tlsServer !== undefined) {
    tlsServer.setSecureContext(pair);
    return;
  }
  tlsServer = createTlsServer(pair, (socket) => socket.end('tls ok\n')).listen(
    port,
    process.env.APP_HOST ?? '127.0.0.1',
  );
}

async function load(reason: string): Promise<void> {
  status.files = readSecrets(dir);
  if (process.env.APP_TLS_PORT !== undefined) serveTls(Number(process.env.APP_TLS_PORT));
  status.loads += 1;
  if (reason !== 'start') status.reloads += 1;
  status.reasons.push(reason);
  if (process.env.APP_PG_FILE !== undefined) status.db = await checkDb(process.env.APP_PG_FILE);
  const summary = Object.entries(status.files)
    .map(([name, f]) => `${name}:${f.sha256}`)
    .join(' ');
  process.stdout.write(
    `app(node) load #${status.loads} reason=${reason} ${summary}${status.db === undefined ? '' : ` db=${status.db.ok ? 'connected' : 'failed'}`}\n`,
  );
}

await load('start');
if (process.env.APP_ONCE === '1') {
  const missing = expected.filter((name) => status.files[name] === undefined);
  if (missing.length > 0) process.stdout.write(`app(node) missing: ${missing.join(',')}\n`);
  process.exit(missing.length === 0 ? 0 : 1);
}

let queue = Promise.resolve();
const reload = (reason: string): Promise<void> => (queue = queue.then(() => load(reason)));
process.on('SIGHUP', () => void reload('SIGHUP'));
process.on('SIGTERM', () => process.exit(0));
createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/reload') {
    void reload('http').then(() => res.end('reloaded\n'));
    return;
  }
  if (req.url === '/status') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(status));
    return;
  }
  res.statusCode = 404;
  res.end();
}).listen(Number(process.env.APP_PORT ?? 8080), process.env.APP_HOST ?? '127.0.0.1');
