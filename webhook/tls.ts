// The serving certificate, reloaded without a restart. Kubernetes updates a mounted Secret by writing a new
// timestamped directory and swapping the `..data` symlink, so the directories holding the files are watched
// (not the files) and every event re-reads both files; a pair that does not load keeps the old one serving.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { watch } from 'chokidar';
import type { Logger } from 'pino';

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Reads and checks a certificate/key pair (createSecureContext throws on a mismatch or bad PEM). */
export async function loadTls(files: TlsFiles): Promise<TlsPair> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  createSecureContext({ cert, key });
  return { cert, key };
}

/** The notAfter of the first (leaf) certificate of a PEM chain, in Unix seconds. */
export function certificateNotAfter(cert: Buffer): number {
  return Math.floor(new X509Certificate(cert).validToDate.getTime() / 1000);
}

export interface TlsWatcher {
  close(): Promise<void>;
}

export interface WatchTlsOptions {
  readonly files: TlsFiles;
  readonly current: TlsPair;
  readonly apply: (pair: TlsPair) => void;
  readonly log: Logger;
  readonly onReload?: (outcome: 'success' | 'failure') => void;
  /** Wait this long after the last event before reading (a Secret update is several file operations). */
  readonly debounceMs?: number;
}

/** Watches the certificate and key; calls `apply` with each new valid pair. */
export function watchTls(options: WatchTlsOptions): TlsWatcher {
  const { files, log } = options;
  let current = options.current;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const reload = async (): Promise<void> => {
    try {
      const next = await loadTls(files);
      if (closed || (next.cert.equals(current.cert) && next.key.equals(current.key))) return;
      options.apply(next);
      current = next;
      options.onReload?.('success');
      log.info({ event: 'tls_reloaded' }, 'serving certificate reloaded');
    } catch (err) {
      options.onReload?.('failure');
      log.warn(
        { event: 'tls_reload_failed', err: { message: (err as Error).message } },
        'new certificate not loaded; the previous one keeps serving',
      );
    }
  };
  const schedule = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => void reload(), options.debounceMs ?? 100);
  };
  const dirs = [...new Set([dirname(files.certFile), dirname(files.keyFile)])];
  const watcher = watch(dirs, { ignoreInitial: true, depth: 1 });
  watcher.on('all', schedule);
  watcher.on('error', (err: unknown) => {
    log.warn({ event: 'tls_watch_error', err: { message: (err as Error).message } }, 'certificate watch error');
  });
  return {
    async close(): Promise<void> {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await watcher.close();
    },
  };
}
