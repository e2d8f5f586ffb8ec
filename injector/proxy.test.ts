// NO_PROXY as the agent's HTTP client matches it: bypassesProxy() against Node's own proxyEnv support sending
// plain-http requests to a real recording proxy, so the webhook's warnings follow what the agent will do.
import assert from 'node:assert/strict';
import { Agent, get } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startEgressProxy } from '../test/support/egress-proxy.ts';
import type { EgressProxy } from '../test/support/egress-proxy.ts';
import { bypassesProxy } from './proxy.ts';

/** NO_PROXY entries and a URL, each checked both ways. */
const CASES: readonly (readonly [readonly string[], string])[] = [
  [['.svc'], 'http://vault.vault.svc:8200/'],
  [['.svc'], 'http://svc:8200/'],
  [['*.svc'], 'http://svc:8200/'],
  [['*.svc'], 'http://vault.vault.svc:8200/'],
  [['.vc'], 'http://vault.vault.svc:8200/'],
  [['*.vc'], 'http://vault.vault.svc:8200/'],
  [['.svc:8200'], 'http://vault.vault.svc:8200/'],
  [['vault.vault.svc:8200'], 'http://vault.vault.svc:8200/'],
  [['vault.vault.svc:8201'], 'http://vault.vault.svc:8200/'],
  [['vault.vault.svc:80'], 'http://vault.vault.svc/'],
  [['vault.vault'], 'http://vault.vault.svc/'],
  [['.cluster.local'], 'http://vault.vault.svc.cluster.local:8200/'],
  [['.cluster.local'], 'http://vault.vault.svc:8200/'],
  [['VAULT.Vault.svc'], 'http://vault.vault.svc/'],
  [['10.0.0.1-10.0.0.9'], 'http://10.0.0.5:8200/'],
  [['10.0.0.1-10.0.0.9'], 'http://10.0.0.10:8200/'],
  [['other', '*'], 'http://vault:8200/'],
  [['other'], 'http://vault:8200/'],
  [['[::1]'], 'http://[::1]:8200/'],
  [['::1'], 'http://[::1]:8200/'],
  [['fd00::7'], 'http://[fd00::7]:8200/'],
];

let proxy: EgressProxy;
before(async () => {
  proxy = await startEgressProxy();
});
after(async () => {
  await proxy.stop();
});

/** Whether Node sent the request through the proxy (what it reached otherwise does not matter here). */
async function nodeUsesProxy(noProxy: readonly string[], url: string): Promise<boolean> {
  proxy.reset();
  const agent = new Agent({ proxyEnv: { HTTP_PROXY: proxy.url, NO_PROXY: noProxy.join(',') } });
  await new Promise<void>((resolve) => {
    const req = get(url, { agent, timeout: 200 }, (res) => {
      res.resume();
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => undefined);
    req.on('close', () => {
      resolve();
    });
  });
  agent.destroy();
  return proxy.seen().length > 0;
}

void describe('bypassesProxy', () => {
  void it('decides as Node does for every kind of NO_PROXY entry', async () => {
    for (const [noProxy, text] of CASES) {
      const url = new URL(text);
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const ours = bypassesProxy(host, url.port === '' ? '80' : url.port, noProxy);
      assert.equal(ours, !(await nodeUsesProxy(noProxy, text)), `${noProxy.join(',')} for ${text}`);
    }
  });
});
