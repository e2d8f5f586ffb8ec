// The checks every URL in an annotation or a setting gets: parseable, http or https, no credentials in it.

export type HttpUrl = { readonly ok: true; readonly url: URL } | { readonly ok: false; readonly problem: string };

/**
 * The shape of an http(s) URL without credentials, query or fragment, as a pattern a JSON schema can carry
 * (the chart's values.schema.json: `helm install` refuses `vault.addr: vault:8200` before the webhook would).
 */
export const HTTP_URL_PATTERN = /^https?:\/\/[^\s/?#@]+(\/[^\s?#@]*)?$/;

/** Parses an http(s) URL; `example` completes the "is not a URL such as …" message. */
export function parseHttpUrl(text: string, example: string): HttpUrl {
  if (text.length > 512 || !URL.canParse(text)) return { ok: false, problem: `is not a URL such as ${example}` };
  const url = new URL(text);
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return { ok: false, problem: 'must be an http or https URL' };
  if (url.username !== '' || url.password !== '') return { ok: false, problem: 'must not carry credentials' };
  return { ok: true, url };
}

/** What is wrong with a Vault address (annotation or webhook setting): it travels in every pod's agent config. */
export function vaultAddrProblem(text: string): string | undefined {
  const parsed = parseHttpUrl(text, 'https://vault.vault.svc:8200');
  if (!parsed.ok) return parsed.problem;
  return parsed.url.search !== '' || parsed.url.hash !== '' ? 'must not have a query or fragment' : undefined;
}
