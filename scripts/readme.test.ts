// The README's generated tables must match the code: every annotation key documented (and nothing else),
// and README.md exactly as `node scripts/readme.ts --write` would write it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { EXAMPLES } from '../injector/annotations.ts';
import { ANNOTATION_DOCS, README, regenerate } from './readme.ts';

void describe('README', () => {
  void it('documents exactly the annotation keys the injector knows', () => {
    assert.deepEqual(Object.keys(ANNOTATION_DOCS).sort(), Object.keys(EXAMPLES).sort());
  });

  void it('matches the generated sections (run "node scripts/readme.ts --write" after changing the code)', () => {
    const current = readFileSync(README, 'utf8');
    assert.equal(current, regenerate(current));
  });

  void it('shows the two quickstart commands', () => {
    const current = readFileSync(README, 'utf8');
    assert.match(current, /^npm install && npm run demo\b/m);
    assert.match(current, /^npm install && npm test\b/m);
  });
});
