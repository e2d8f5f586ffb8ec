// An egress proxy for the agents (the webhook's `proxy` setting): given to every agent as HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY, which the agent's two backend clients (the Vault transport and the AWS SDK's
// handler, STS included) hand to Node's own proxy support (http.Agent proxyEnv: CONNECT tunnels for https).
// Nothing else in the agent uses them: the reload POST to loopback and the EKS Pod Identity credential endpoint
// always go direct. NO_PROXY is matched the way Node matches it, so entries are refused where Node would
// silently ignore them (CIDR ranges), instead of sending the traffic of a private address to the proxy.
// A pod whose Vault or AWS endpoint is a cluster-internal host the proxy would carry is admitted with a warning.
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { parseHttpUrl } from './http-url.ts';
import type { EnvVar } from './pod-shape.ts';

/** http(s)://host[:port] without credentials (they would sit in every pod spec) or a path. */
const PROXY_URL_PATTERN = /^https?:\/\/[^\s/?#@]+\/?$/;

/**
 * One NO_PROXY entry as Node's proxy support matches it: `*` (everything), a host or IP (exactly), `.domain`
 * or `*.domain` (the domain's subdomains), each optionally `:port`; or an IPv6 address, bare (Node compares the
 * address without brackets, so a bracketed entry would never match).
 */
export const NO_PROXY_ENTRY =
  /^(\*|(\*?\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(:[0-9]{1,5})?|[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}(\.[0-9]+){0,3})$/;

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
    else if (entry.startsWith('['))
      ctx.addIssue({
        code: 'custom',
        message: `"${entry.slice(0, 64)}" has brackets, which the agent's HTTP client (Node) does not match: write the IPv6 address bare, e.g. ::1, without a port`,
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
        'Hosts the agents reach directly (env NO_PROXY, comma-joined): an exact host or IP (IPv6 bare, without brackets), .domain or *.domain for subdomains (a bare domain matches only itself), optional :port, or *. No CIDR ranges. List a Vault on a private network, e.g. [vault.vault.svc, .svc.cluster.local, 10.0.12.7]; a pod whose Vault address or AWS endpoint is a cluster-internal host (*.svc, *.svc.cluster.local, a single-label name, a private IP) left out is admitted with a warning.',
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

/**
 * Whether the agent's HTTP client (Node's proxyEnv) goes to host:port directly for these NO_PROXY entries, as
 * Node matches them: `*`, the host or host:port exactly, `.domain` (the domain and its subdomains), `*.domain`
 * (its subdomains), an IPv4 range `a-b`. `port` is the URL's, or its scheme's default.
 */
export function bypassesProxy(host: string, port: string, noProxy: readonly string[]): boolean {
  const name = host.toLowerCase();
  return noProxy.some((raw) => {
    const entry = raw.trim().toLowerCase();
    if (entry === '*' || entry === name || entry === `${name}:${port}`) return true;
    if (entry.startsWith('.') && (name === entry.slice(1) || name.endsWith(entry))) return true;
    if (entry.startsWith('*.') && name.endsWith(entry.slice(1))) return true;
    const [start, end, ...rest] = entry.split('-');
    return rest.length === 0 && start !== undefined && end !== undefined && inIpv4Range(name, start, end);
  });
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function inIpv4Range(host: string, start: string, end: string): boolean {
  if (isIP(host) !== 4 || isIP(start) !== 4 || isIP(end) !== 4) return false;
  const n = ipv4Number(host);
  return n >= ipv4Number(start) && n <= ipv4Number(end);
}

/** Private, loopback, link-local and shared (CGNAT, pod networks) ranges. */
const PRIVATE_RANGES = new BlockList();
for (const [net, prefix] of [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
] as const)
  PRIVATE_RANGES.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['fc00::', 7],
  ['fe80::', 10],
  ['::1', 128],
] as const)
  PRIVATE_RANGES.addSubnet(net, prefix, 'ipv6');

/**
 * The NO_PROXY entry to suggest for a host a proxy outside the cluster most likely cannot reach (a Service
 * name, a single-label name, a private IP), or undefined for any other host: external hosts behind a proxy
 * are the normal case.
 */
function internalHostEntry(host: string): string | undefined {
  const family = isIP(host);
  if (family !== 0) return PRIVATE_RANGES.check(host, family === 4 ? 'ipv4' : 'ipv6') ? host : undefined;
  if (host.endsWith('.svc')) return '.svc';
  if (host.endsWith('.svc.cluster.local')) return '.cluster.local';
  return host.includes('.') ? undefined : host;
}

/** A backend URL the agent calls, and what to call its host in a warning (`the Vault address's host`). */
export interface BackendUrl {
  readonly what: string;
  readonly url: string;
}

/**
 * Warnings for backend URLs whose host is cluster-internal yet goes through the proxy (not in noProxy): often
 * unintended, and a proxy outside the cluster cannot resolve a Service name. The pod is still admitted.
 */
export function proxiedInternalHosts(backends: readonly BackendUrl[], proxy: ProxySettings): string[] {
  return backends.flatMap(({ what, url: text }) => {
    if (!URL.canParse(text)) return [];
    const url = new URL(text);
    const via = url.protocol === 'https:' ? proxy.httpsProxy : url.protocol === 'http:' ? proxy.httpProxy : undefined;
    // URL keeps IPv6 hosts in brackets; Node matches NO_PROXY against the address without them.
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const entry = internalHostEntry(host);
    if (via === undefined || entry === undefined) return [];
    const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
    if (bypassesProxy(host, port, proxy.noProxy)) return [];
    const fix = entry === host ? host : `${host} or ${entry}`;
    return [
      `${what} ${host} is cluster-internal, but the agent reaches it through the proxy ${via}: add ${fix} to config.proxy.noProxy`,
    ];
  });
}
