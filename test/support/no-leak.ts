// The leak check every test runs on what it captured (logs, metrics, answers): none of the secret values it
// wrote may appear. A failure names the value by its fingerprint only, so the check itself prints no secret.
import assert from 'node:assert/strict';
import { fingerprint } from '../../devkit/apps/secrets-dir.ts';

/** Fails when any captured text contains one of the secret values. */
export function assertNoLeak(texts: readonly string[], values: readonly string[]): void {
  for (const value of values) {
    for (const text of texts)
      assert.ok(!text.includes(value), `a secret value (sha256 ${fingerprint(value)}) appears in captured output`);
  }
}
