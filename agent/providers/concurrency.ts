// Bounded parallelism for providers that must make one backend call per secret, and the bookkeeping every
// provider shares: one read per distinct secret (path, parameters and version), whose answer serves every reference
// to it.
import type { SecretReference } from '../../injector/reference.ts';
import { ProviderError } from '../provider.ts';
import type { FetchOutcome, Fetched } from '../provider.ts';

/** What a provider learned about one backend secret. */
export type Outcome =
  { readonly ok: true; readonly fetched: Fetched } | { readonly ok: false; readonly error: ProviderError };

/** Runs fn over items with at most `limit` calls in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The key of the backend secret a reference reads: path, parameters and version, `#field` left out. */
export function secretKey(ref: Pick<SecretReference, 'path' | 'query' | 'version'>): string {
  return `${ref.path}${ref.query === undefined ? '' : `?${ref.query}`}@${ref.version ?? ''}`;
}

/** Reads each distinct secret among refs once (two files from one dynamic secret must share one credential). */
export async function readDistinct(
  refs: readonly SecretReference[],
  limit: number,
  read: (ref: SecretReference) => Promise<Outcome>,
): Promise<Map<string, Outcome>> {
  const distinct = [...new Map(refs.map((ref) => [secretKey(ref), ref])).values()];
  const outcomes = await mapLimit(distinct, limit, read);
  return new Map(distinct.map((ref, i) => [secretKey(ref), outcomes[i] as Outcome]));
}

/** One outcome per reference, in order, from the answers by secretKey; a secret without an answer fails retryably. */
export function answerEach(
  provider: string,
  refs: readonly SecretReference[],
  answers: ReadonlyMap<string, Outcome>,
): FetchOutcome[] {
  return refs.map((ref): FetchOutcome => {
    const answer = answers.get(secretKey(ref));
    if (answer === undefined)
      return { ok: false, ref, error: new ProviderError('BAD_RESPONSE', `${provider} ${ref.path}: no answer`) };
    return answer.ok ? { ok: true, ref, fetched: answer.fetched } : { ok: false, ref, error: answer.error };
  });
}
