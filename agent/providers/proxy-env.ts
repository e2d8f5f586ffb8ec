// The agent's proxy settings (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, the webhook's `proxy` setting), handed
// to the backend clients' own http(s) agents as Node's `proxyEnv`. Node's global agent is left alone
// (NODE_USE_ENV_PROXY stays off), so the reload POST to loopback and the AWS container-credential endpoint
// (EKS Pod Identity, link-local) always go direct.

const NAMES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'] as const;

export type ProxyEnv = Readonly<Partial<Record<(typeof NAMES)[number], string>>>;

/** The proxy variables of `env`, or undefined when it names no proxy (then the clients' agents are unchanged). */
export function proxyEnvOf(env: Readonly<Record<string, string | undefined>>): ProxyEnv | undefined {
  const picked: Partial<Record<(typeof NAMES)[number], string>> = {};
  for (const name of NAMES) {
    const value = env[name];
    if (value !== undefined && value !== '') picked[name] = value;
  }
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((n) => n in picked);
  return proxied ? picked : undefined;
}
