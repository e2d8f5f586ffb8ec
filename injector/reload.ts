// `sidekey.io/reload`: none | signal:<SIG> | http:<loopback URL>. Pure parsing; which container gets the
// signal and whether its UID is known is decided with the pod in plan.ts.
import { quote } from './problems.ts';
import { parseHttpUrl } from './http-url.ts';

/** Signals an app may be asked to reload on. TERM, INT and QUIT stop most processes (the kubelet restarts them). */
export const RELOAD_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
export const STOPPING_SIGNALS: readonly string[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];

export type ReloadRequest =
  | { readonly kind: 'none' }
  | { readonly kind: 'signal'; readonly signal: (typeof RELOAD_SIGNALS)[number] }
  | { readonly kind: 'http'; readonly url: string };

export type ReloadResult =
  { readonly ok: true; readonly reload: ReloadRequest } | { readonly ok: false; readonly problem: string };

const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', 'localhost', '[::1]'];

export function parseReload(value: string): ReloadResult {
  if (value === 'none') return { ok: true, reload: { kind: 'none' } };
  if (value.startsWith('signal:')) {
    const name = value.slice('signal:'.length);
    const signal = RELOAD_SIGNALS.find((s) => s === name || s === `SIG${name}`);
    if (signal !== undefined) return { ok: true, reload: { kind: 'signal', signal } };
    return { ok: false, problem: `${quote(name, 12)} is not a reload signal (${RELOAD_SIGNALS.join(', ')})` };
  }
  if (value.startsWith('http:') || value.startsWith('https://')) {
    // Both `http:http://127.0.0.1:8080/reload` (the grammar) and the plain URL `http://127.0.0.1:8080/reload`.
    const url = /^https?:\/\//.test(value) ? value : value.slice('http:'.length);
    const problem = loopbackProblem(url);
    return problem === undefined ? { ok: true, reload: { kind: 'http', url } } : { ok: false, problem };
  }
  return { ok: false, problem: 'must be none, signal:<SIGNAL> or http:<URL on 127.0.0.1 or localhost>' };
}

function loopbackProblem(text: string): string | undefined {
  const parsed = parseHttpUrl(text, 'http://127.0.0.1:8080/-/reload');
  if (!parsed.ok) return `the http reload target ${parsed.problem}`;
  if (!LOOPBACK_HOSTS.includes(parsed.url.hostname)) {
    return "the http reload URL must be on 127.0.0.1, localhost or [::1] (the pod's own network namespace), so secrets never trigger calls elsewhere";
  }
  if (parsed.url.protocol === 'https:') {
    // The agent verifies TLS against the public CAs only: no app certificate for a loopback address passes.
    const fixed = `http://${parsed.url.host}${parsed.url.pathname}`;
    return `the agent cannot verify an https reload URL (it has no CA for the app's loopback certificate, so every reload would fail); the POST never leaves the pod, so use http: http:${fixed}`;
  }
  return undefined;
}
