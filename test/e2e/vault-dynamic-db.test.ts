// Vault dynamic database credentials (real OpenBao database engine on a real PostgreSQL): the app connects
// with the issued login; the agent renews the lease (about 2/3 of its TTL) instead of fetching again; near the
// max TTL it gets a new credential, the app reloads once (same process) and reconnects with it, and the old
// login disappears from PostgreSQL (revoked, or expired with its lease).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postgresBinDir } from '../../scripts/setup-tools.ts';
import { READ_ALL_POLICY, startOpenBao } from '../support/openbao.ts';
import type { KubernetesAuth, OpenBaoHandle } from '../support/openbao.ts';
import { startPostgres } from '../support/postgres.ts';
import type { PostgresHandle } from '../support/postgres.ts';
import type { RunningPod } from '../pod-runner/pod-runner.ts';
import { AGENT_PORT, admitAndRun, appPod, assertNoLeak, sleep, startScenarioWebhook, waitFor, waitForStatus } from './harness.ts';
import type { ScenarioWebhook } from './harness.ts';

const TTL_S = 12;
const MAX_TTL_S = 36;

/** The password of the login the agent wrote into the app's db-url file, read as `kubectl exec cat` would. */
function dbPassword(pod: RunningPod): string {
  const password = new URL(pod.exec('app', ['cat', '/var/run/secrets/sidekey/db-url'])).password;
  assert.ok(password !== '', 'the db-url file holds a password');
  return decodeURIComponent(password);
}

void describe('e2e: Vault dynamic database credentials', { timeout: 240_000 }, () => {
  let pg: PostgresHandle;
  let bao: OpenBaoHandle;
  let k8s: KubernetesAuth;
  let hook: ScenarioWebhook;
  let pod: RunningPod | undefined;

  before(async () => {
    pg = await startPostgres();
    bao = await startOpenBao();
    await bao.setupDatabase(pg, { role: 'readonly', defaultTtl: `${TTL_S}s`, maxTtl: `${MAX_TTL_S}s` });
    await bao.writePolicy('read-all', READ_ALL_POLICY);
    k8s = await bao.setupKubernetes('reports', ['read-all'], 'e2e', 'reports');
    hook = await startScenarioWebhook({ vault: { addr: bao.addr } });
  });
  after(async () => {
    await pod?.stop();
    await hook.close();
    await bao.stop();
    await pg.stop();
  });

  void it('connects, renews the lease, rotates to a new login with one reload, and the old login goes away', async () => {
    const bin = postgresBinDir();
    assert.ok(bin !== undefined, 'PostgreSQL is installed by npm run setup');
    const run = await admitAndRun(
      hook.webhook,
      appPod({
        name: 'reports',
        runAsUser: 1000,
        serviceAccount: 'reports',
        env: { APP_PG_FILE: 'db-url', APP_PSQL: join(bin, 'psql') },
        annotations: {
          inject: 'true',
          'secret-db-url': 'vault:database/creds/readonly',
          'template-db-url': `postgresql://{{ .username }}:{{ .password }}@127.0.0.1:${pg.port}/postgres?sslmode=disable`,
          reload: 'signal:SIGHUP',
          'vault-role': 'reports',
        },
      }),
      { services: [Number(new URL(bao.addr).port), pg.port], serviceAccountToken: () => k8s.token },
    );
    pod = run.pod;
    const first = await waitForStatus(pod, (s) => s.db !== undefined, 15_000, 'a database check');
    assert.ok(first.db?.ok === true && first.db.user !== undefined, `the app connects with the issued login: ${JSON.stringify(first.db)}`);
    const firstUser = first.db.user;
    assert.match(firstUser, /^v-/);
    const issued = [dbPassword(pod)];
    const issuedAt = Date.now();

    await sleep(TTL_S * 1000);
    const metrics = (await pod.request(AGENT_PORT, '/metrics')).body;
    assert.match(metrics, /sidekey_agent_lease_renewals_total\{[^}]*result="(ok|success)"[^}]*\} [1-9]/, 'the lease was renewed');
    const renewed = await waitForStatus(pod, () => true, 5000, 'status');
    assert.equal(renewed.reloads, 0, 'a renewal changes nothing for the app');
    assert.match(await pg.query(`SELECT count(*) FROM pg_roles WHERE rolname = '${firstUser}'`), /^1$/, 'the first login is still alive after its TTL: renewed');

    const next = await waitForStatus(pod, (s) => s.db?.user !== undefined && s.db.user !== firstUser, (MAX_TTL_S + 10) * 1000, 'a new login before the max TTL');
    assert.ok(Date.now() - issuedAt < MAX_TTL_S * 1000, 'the new login arrived before the old one reached its max TTL');
    assert.equal(next.db?.ok, true, 'the app reconnects with the new login');
    assert.deepEqual([next.pid, next.reloads, next.reasons.at(-1)], [first.pid, 1, 'SIGHUP']);
    issued.push(dbPassword(pod));

    const live = `SELECT count(*) FROM pg_roles WHERE rolname = '${firstUser}' AND (rolvaliduntil IS NULL OR rolvaliduntil > now())`;
    await waitFor(pod, 'the old login revoked or expired', () => pg.query(live), (count) => count === '0', { timeoutMs: 30_000, intervalMs: 500 });
    assertNoLeak([pod.allLogs(), hook.log()], [k8s.token, pg.superuserPassword, ...issued]);
  });
});
