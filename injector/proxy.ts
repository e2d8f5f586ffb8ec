// An egress proxy for the agents (the webhook's `proxy` setting): given to every agent as HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY, which the agent's two backend clients (the Vault transport and the AWS SDK's
// handler, STS included) hand to Node's own proxy support (http.Agent proxyEnv: CONNECT tunnels for https).
// Nothing else in the agent uses them: the reload POST to loopback and the EKS Pod Identity credential endpoint
// always go direct. NO_PROXY is matched the way Node matches it, so entries are refused where Node would
// silently ignore them (CIDR ranges), instead of sending the traffic of a private address to the proxy.
import { z } from 'zod';
import { parseHttpUrl } from './http-url.ts';
import type { EnvVar } from './pod-shape.ts';

/** http(s)://host[:port] without credentials (they would sit in every pod spec) or a path. */
const PROXY_URL_PATTERN = /^https?:\/\/[^\s/?#@]+\/?$/;

/**
 * One NO_PROXY entry as Node's proxy support matches it: `*` (everything), a host or IP (exactly), `.domain`
 * or `*.domain` (the domain's subdomains), each optionally `:port`; IPv6 in brackets.
 */
export const NO_PROXY_ENTRY =
  /^(\*|(\*?\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?)$/;

function proxyUrl(which: string): z.ZodString {
  return z
    .string()
    .regex(
      PROXY_URL_PATTERN,
      'must be http://host:port or https://host:port, without credentials or a path (credentials would be visible in every injected pod spec)',
    )
    .superRefine((text, ctx) => {
      const parsed = parseHttpUrl(text, 'http://proxy.example.com:3128');
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.problem });
    })
    .describe(
      `Proxy for the agents' ${which} backend calls, e.g. http://proxy.corp:3128 (env ${which === 'https' ? 'HTTPS_PROXY' : 'HTTP_PROXY'} of every agent).`,
    );
}

const noProxyEntry = z
  .string()
  .max(253)
  .superRefine((entry, ctx) => {
    if (entry.includes('/'))
      ctx.addIssue({
        code: 'custom',
        message: `"${entry.slice(0, 64)}" is a CIDR range, which the agent's HTTP client (Node) does not match: list the addresses, or a domain suffix such as .svc`,
      });
  })
  .regex(NO_PROXY_ENTRY, 'must be *, a host or IP, or .domain / *.domain for its subdomains, optionally with :port');

export const proxySchema = z
  .strictObject({
    httpsProxy: proxyUrl('https').optional(),
    httpProxy: proxyUrl('http').optional(),
    noProxy: z
      .array(noProxyEntry)
      .max(200)
      .describe(
        'Hosts the agents reach directly (env NO_PROXY, comma-joined): an exact host or IP, .domain or *.domain for subdomains (a bare domain matches only itself), optional :port, or *. No CIDR ranges. List a Vault on a private network, e.g. [vault.vault.svc, .svc.cluster.local, 10.0.12.7].',
      )
      .default([]),
  })
  .describe(
    'Egress proxy for injected agents, given to each as HTTPS_PROXY / HTTP_PROXY / NO_PROXY and used by its Vault and AWS clients (STS included); the reload POST to loopback and the EKS Pod Identity endpoint are never proxied.',
  );

export type ProxySettings = z.infer<typeof proxySchema>;

/** The env an agent container gets for the proxy settings (none when no proxy is set). */
export function proxyEnv(proxy: ProxySettings): EnvVar[] {
  if (proxy.httpsProxy === undefined && proxy.httpProxy === undefined) return [];
  return [
    ...(proxy.httpsProxy === undefined ? [] : [{ name: 'HTTPS_PROXY', value: proxy.httpsProxy }]),
    ...(proxy.httpProxy === undefined ? [] : [{ name: 'HTTP_PROXY', value: proxy.httpProxy }]),
    ...(proxy.noProxy.length === 0 ? [] : [{ name: 'NO_PROXY', value: proxy.noProxy.join(',') }]),
  ];
}
