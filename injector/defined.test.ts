import assert from 'node:assert/strict';
import { it } from 'node:test';
import { defined } from './defined.ts';

void it('keeps the fields that have a value and leaves out the undefined ones (falsy values stay)', () => {
  const none: string | undefined = undefined;
  const kept = defined({ a: 'x', b: none, c: 0, d: '', e: null, f: false });
  assert.deepEqual(kept, { a: 'x', c: 0, d: '', e: null, f: false });
  assert.equal(Object.hasOwn(kept, 'b'), false);
  assert.deepEqual({ z: 1, ...defined({ y: none }) }, { z: 1 });
});
