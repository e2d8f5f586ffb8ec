// The webhook over real HTTPS on port 0 with a test CA: the review table, HTTP-level mistakes, health,
// metrics, certificate rotation without restart (the Kubernetes ..data symlink swap) and the drain.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { bodyOf, checkCase, loadReviewCases, tableConfig } from '../test/support/admission-cases.ts';
import { createTestCa, leafFiles } from '../test/support/test-ca.ts';
import type { TestCa } from '../test/support/test-ca.ts';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { MAX_IN_FLIGHT } from './body.ts';
import { API_SERVER_MAX_REVIEW_BYTES, parseWebhookConfig } from './config.ts';
import { createMetrics } from './metrics.ts';
import { startWebhook } from './server.ts';
import type { RunningWebhook } from './server.ts';

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly servedCn: string;
}

interface PeerSocket {
  getPeerCertificate(): { subject: { CN?: string } };
}

interface Call {
  readonly path: string;
  readonly method?: string;
  readonly body?: string | Buffer;
  readonly contentType?: string;
  /** Send the body chunked, without a content-length. */
  readonly chunked?: boolean;
}

/** A Kubernetes-style Secret volume: files are links into `..data`, which is swapped atomically. */
class SecretDir {
  readonly dir = mkdtempSync(join(tmpdir(), 'sidekey-secret-'));
  #generation = 0;

  write(files: Record<string, string>): void {
    this.#generation += 1;
    const data = `..gen_${this.#generation}`;
    mkdirSync(join(this.dir, data));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, data, name), content);
    symlinkSync(data, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      if (this.#generation === 1) symlinkSync(join('..data', name), join(this.dir, name));
    }
    if (this.#generation > 1) rmSync(join(this.dir, `..gen_${this.#generation - 1}`), { recursive: true });
  }
}

void describe('webhook server over HTTPS', () => {
  let ca: TestCa;
  let secret: SecretDir;
  let webhook: RunningWebhook;
  const metrics = createMetrics({ defaultMetrics: false });
  const logLines: string[] = [];
  const logStream = { write: (line: string): void => void logLines.push(line) };

  const call = (c: Call): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const body = c.body ?? '';
      const req = request(
        {
          host: '127.0.0.1',
          port: webhook.port,
          path: c.path,
          method: c.method ?? 'POST',
          ca: ca.caCert,
          agent: false,
          headers: {
            'content-type': c.contentType ?? 'application/json',
            ...(c.chunked === true ? {} : { 'content-length': Buffer.byteLength(body) }),
          },
        },
        (res) => {
          const servedCn = String((res.socket as unknown as PeerSocket).getPeerCertificate().subject.CN);
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              text,
              body: text.startsWith('{') ? JSON.parse(text) : text,
              servedCn,
            });
          });
        },
      );
      req.on('error', reject);
      if (c.chunked === true) {
        req.write(body);
        req.end();
      } else {
        req.end(body);
      }
    });

  before(async () => {
    ca = createTestCa();
    secret = new SecretDir();
    const leaf = ca.issue('leaf-one');
    secret.write({ 'tls.crt': leaf.cert, 'tls.key': leaf.key });
    const config = tableConfig({
      port: 0,
      metricsPort: 0,
      tlsCert: join(secret.dir, 'tls.crt'),
      tlsKey: join(secret.dir, 'tls.key'),
      maxBodyBytes: 64 * 1024,
      drainSeconds: 0,
    });
    webhook = await startWebhook({ config, log: pino({ level: 'debug' }, logStream), metrics, host: '127.0.0.1' });
  });

  after(async () => {
    await webhook.close();
    rmSync(secret.dir, { recursive: true, force: true });
    ca.dispose();
  });

  void describe('review table', () => {
    for (const c of loadReviewCases()) {
      void it(c.name, async () => {
        const answer = await call({ path: '/mutate?timeout=10s', body: bodyOf(c) });
        checkCase(c, answer.status, answer.body);
      });
    }
  });

  void it('logs one JSON line per admission, naming codes and uids but no annotation value or agent config', () => {
    const admissions = logLines
      .map((l) => JSON.parse(l) as { event?: string; uid?: string })
      .filter((l) => l.event === 'admission');
    assert.ok(admissions.some((l) => l.uid === '705ab4f5-6393-11e8-b7cc-42010a800002'));
    for (const line of logLines) {
      assert.ok(!line.includes('aws:prod') && !line.includes('SIDEKEY_CONFIG') && !line.includes('"object"'), line);
    }
  });

  void it('answers HTTP mistakes with a 4xx and a JSON reason', async () => {
    const cases: [Call, number][] = [
      [{ path: '/mutate', body: '{}', contentType: 'text/plain' }, 415],
      [{ path: '/mutate', method: 'GET' }, 405],
      [{ path: '/nope', method: 'GET' }, 404],
      [{ path: '/mutate', body: Buffer.alloc(65 * 1024, 0x20) }, 413],
      [{ path: '/mutate', body: Buffer.alloc(65 * 1024, 0x20), chunked: true }, 413],
      [{ path: '/validate', body: Buffer.alloc(65 * 1024, 0x20), chunked: true }, 413],
      [{ path: '/validate/warn', body: Buffer.alloc(65 * 1024, 0x20) }, 413],
      [{ path: '/validate', method: 'GET' }, 405],
      [{ path: '/validate/warn', body: '{}', contentType: 'text/plain' }, 415],
    ];
    for (const [c, status] of cases) {
      const answer = await call(c);
      assert.equal(answer.status, status, `${c.method ?? 'POST'} ${c.path}`);
      assert.equal(typeof (answer.body as { error: unknown }).error, 'string');
    }
  });

  void it('checks workload templates on /validate (refused) and /validate/warn (warnings), logged and counted', async () => {
    const annotations = {
      'sidekey.io/inject': 'true',
      'sidekey.io/secret-db': 'aws:prod/db#password',
      'sidekey.io/aws-region': 'eu-west-1',
      'sidekey.io/refresh': 'soon',
    };
    const template = { metadata: { annotations }, spec: { containers: [{ name: 'web', image: 'nginx' }] } };
    const review = (kind: string, group: string, object: unknown): string =>
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `wl-${kind}`,
          kind: { group, version: 'v1', kind },
          namespace: 'shop',
          operation: 'CREATE',
          object,
        },
      });
    const podMessage = (
      (await call({ path: '/mutate', body: review('Pod', '', template) })).body as {
        response: { status: { message: string } };
      }
    ).response.status.message;
    const cronJob = { spec: { schedule: '@daily', jobTemplate: { spec: { template } } } };
    const refused = (await call({ path: '/validate?timeout=5s', body: review('CronJob', 'batch', cronJob) })).body as {
      response: { allowed: boolean; status: { message: string } };
    };
    assert.equal(refused.response.allowed, false);
    assert.equal(refused.response.status.message, podMessage);
    const warned = (await call({ path: '/validate/warn', body: review('Deployment', 'apps', { spec: { template } }) }))
      .body as { response: { allowed: boolean; warnings: string[] } };
    assert.equal(warned.response.allowed, true);
    assert.ok(warned.response.warnings.includes(podMessage), String(warned.response.warnings));
    const checks = logLines
      .map((l) => JSON.parse(l) as { event?: string; result?: string; detail?: string })
      .filter((l) => l.event === 'workload_check');
    assert.deepEqual(
      checks.slice(-2).map((l) => [l.result, l.detail]),
      [
        ['denied', 'SK_BAD_DURATION'],
        ['warned', 'SK_BAD_DURATION'],
      ],
    );
    const text = await metrics.registry.getSingleMetricAsString('sidekey_webhook_workload_checks_total');
    assert.match(text, /sidekey_webhook_workload_checks_total\{result="denied"\} [1-9]/);
    assert.match(text, /sidekey_webhook_workload_checks_total\{result="warned"\} [1-9]/);
    assert.match(
      await metrics.registry.getSingleMetricAsString('sidekey_webhook_workload_check_duration_seconds'),
      /_bucket\{le="\+Inf",result="denied"\} [1-9]/,
    );
  });

  void it('serves health, readiness and metrics', async () => {
    assert.equal((await call({ path: '/healthz', method: 'GET' })).status, 200);
    assert.equal((await call({ path: '/readyz', method: 'GET' })).status, 200);
    const text = await new Promise<string>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: webhook.metricsPort, path: '/metrics' }, (res) => {
        let out = '';
        res.on('data', (d: Buffer) => (out += d.toString()));
        res.on('end', () => {
          resolve(out);
        });
      })
        .on('error', reject)
        .end();
    });
    assert.match(text, /sidekey_webhook_admissions_total\{result="injected"\} [1-9]/);
    assert.match(text, /sidekey_webhook_admission_duration_seconds_bucket\{le="\+Inf",result="injected"\} [1-9]/);
    const expiry = Number(/^sidekey_webhook_tls_certificate_expiry_timestamp_seconds (\d+)$/m.exec(text)?.[1]);
    assert.equal(
      expiry,
      Math.floor(new X509Certificate(readFileSync(join(secret.dir, 'tls.crt'))).validToDate.getTime() / 1000),
    );
  });

  void it('serves a rotated certificate without restart and keeps the old one when the new one is broken', async () => {
    assert.equal((await call({ path: '/healthz', method: 'GET' })).servedCn, 'leaf-one');
    const next = ca.issue('leaf-two');
    secret.write({ 'tls.crt': next.cert, 'tls.key': next.key });
    await waitFor(async () => (await call({ path: '/healthz', method: 'GET' })).servedCn === 'leaf-two');
    const broken = ca.issue('leaf-three');
    secret.write({ 'tls.crt': broken.cert, 'tls.key': next.key });
    await waitFor(async () =>
      (await metrics.registry.getSingleMetricAsString('sidekey_webhook_tls_reloads_total')).includes(
        'outcome="failure"',
      ),
    );
    assert.equal((await call({ path: '/healthz', method: 'GET' })).servedCn, 'leaf-two');
  });
});

void describe('webhook drain', () => {
  void it('fails readiness while draining, then closes', async () => {
    const ca = createTestCa();
    const { dir, tlsCert, tlsKey } = leafFiles(ca, 'drain');
    const config = tableConfig({ port: 0, metricsPort: 0, tlsCert, tlsKey, drainSeconds: 1 });
    const webhook = await startWebhook({
      config,
      log: pino({ level: 'silent' }),
      metrics: createMetrics({ defaultMetrics: false }),
      host: '127.0.0.1',
    });
    const ready = (): Promise<number> =>
      new Promise((resolve, reject) => {
        request({ host: '127.0.0.1', port: webhook.port, path: '/readyz', ca: ca.caCert, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    assert.equal(await ready(), 200);
    const draining = webhook.drain();
    assert.equal(await ready(), 503);
    await draining;
    await assert.rejects(ready());
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  });
});

void describe('webhook bounds', () => {
  let ca: TestCa;
  let dir: string;
  let webhook: RunningWebhook;
  const maxBodyBytes = 64 * 1024;

  before(async () => {
    ca = createTestCa();
    const files = leafFiles(ca, 'bounds');
    dir = files.dir;
    const config = tableConfig({
      port: 0,
      metricsPort: 0,
      tlsCert: files.tlsCert,
      tlsKey: files.tlsKey,
      maxBodyBytes,
      drainSeconds: 0,
    });
    webhook = await startWebhook({
      config,
      log: pino({ level: 'silent' }),
      metrics: createMetrics({ defaultMetrics: false }),
      host: '127.0.0.1',
    });
  });

  after(async () => {
    await webhook.close();
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  });

  /**
   * A POST to `path` declaring `declared` bytes that sends `sent` and then stalls; `answer` settles when the server
   * answers.
   */
  const upload = (
    declared: number,
    sent: number,
    path = '/mutate',
  ): { answer: Promise<{ status: number; error: string }>; stop: () => void } => {
    let stop = (): void => undefined;
    const answer = new Promise<{ status: number; error: string }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: webhook.port,
          path,
          method: 'POST',
          ca: ca.caCert,
          agent: false,
          headers: { 'content-type': 'application/json', 'content-length': declared },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, error: String((JSON.parse(text) as { error?: unknown }).error) });
          });
        },
      );
      req.on('error', reject);
      req.write(Buffer.alloc(sent, 0x20));
      stop = () => req.destroy();
    });
    answer.catch(() => undefined);
    return { answer, stop };
  };
  /** The answer, or 'no answer' after 5 s (a server without the bounds keeps the request waiting). */
  const within = <T>(p: Promise<T>): Promise<T | 'no answer'> =>
    Promise.race([
      p,
      new Promise<'no answer'>((r) => {
        setTimeout(() => {
          r('no answer');
        }, 5000).unref();
      }),
    ]);

  void it('takes no body larger than the API server can send, by default and at most', () => {
    const defaults = parseWebhookConfig({});
    assert.ok(defaults.ok);
    assert.equal(defaults.value.maxBodyBytes, API_SERVER_MAX_REVIEW_BYTES);
    assert.ok(API_SERVER_MAX_REVIEW_BYTES < 3.5 * 1024 * 1024);
    const larger = parseWebhookConfig({ maxBodyBytes: 7 * 1024 * 1024 });
    assert.ok(!larger.ok && larger.error.includes('maxBodyBytes'));
  });

  void it('refuses admissions beyond the in-flight bound, shared by /mutate and /validate, with a 503 and a reason, and serves again once they end', async () => {
    const held = Array.from({ length: MAX_IN_FLIGHT }, (_, i) =>
      upload(1000, 10, i % 2 === 0 ? '/mutate' : '/validate'),
    );
    await waitFor(async () => (await within(upload(1000, 1000).answer)) !== 'no answer');
    const extra = await within(upload(1000, 1000, '/validate/warn').answer);
    assert.notEqual(extra, 'no answer');
    assert.equal(extra === 'no answer' ? 0 : extra.status, 503);
    assert.match(extra === 'no answer' ? '' : extra.error, new RegExp(`already handling ${MAX_IN_FLIGHT} admissions`));
    for (const h of held) h.stop();
    await waitFor(async () => {
      const r = await within(upload(2, 2).answer);
      return r !== 'no answer' && r.status === 400;
    });
  });

  void it('refuses a body once the bodies being read hold four times maxBodyBytes', async () => {
    const held = Array.from({ length: 4 }, () => upload(maxBodyBytes, 100));
    await new Promise((r) => setTimeout(r, 200));
    const extra = await within(upload(maxBodyBytes, 100).answer);
    assert.notEqual(extra, 'no answer');
    assert.equal(extra === 'no answer' ? 0 : extra.status, 503);
    assert.match(extra === 'no answer' ? '' : extra.error, /already reading 256 KiB of request bodies/);
    for (const h of held) h.stop();
  });
});

void describe('webhook start', () => {
  void it('refuses port equal to metricsPort in the configuration', () => {
    const parsed = parseWebhookConfig({ port: 9443, metricsPort: 9443 });
    assert.ok(!parsed.ok && parsed.error.includes('port and metricsPort must differ'));
  });

  void it('closes what it opened when a port is taken, so the process can exit', async () => {
    const ca = createTestCa();
    const { dir, tlsCert, tlsKey } = leafFiles(ca, 'start');
    const taken = createNetServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const free = createNetServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    const config = tableConfig({ port, metricsPort: (taken.address() as AddressInfo).port, tlsCert, tlsKey });
    await assert.rejects(
      startWebhook({
        config,
        log: pino({ level: 'silent' }),
        metrics: createMetrics({ defaultMetrics: false }),
        host: '127.0.0.1',
      }),
      /EADDRINUSE/,
    );
    const healthz = new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/healthz', ca: ca.caCert, agent: false }, resolve)
        .on('error', reject)
        .end();
    });
    await assert.rejects(healthz, /ECONNREFUSED/, 'nothing answers /healthz after a failed start');
    await new Promise((r) => taken.close(r));
    rmSync(dir, { recursive: true, force: true });
    ca.dispose();
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the condition');
    await new Promise((r) => setTimeout(r, 50));
  }
}
