// Test helper: runs writeAtomic with an fs whose operation OP SIGKILLs this process on its Nth call, to leave
// the target directory exactly as a crash between writer steps would. Usage: kill-writer.ts DIR OP N JSON
import * as fs from 'node:fs/promises';
import { writeAtomic, type WriterFs } from '../atomic-writer.ts';

const [target = '', op = '', nth = '1', json = '{}'] = process.argv.slice(2);
let calls = 0;
const crashing = new Proxy(fs, {
  get(real, name: string): unknown {
    const fn: unknown = Reflect.get(real, name);
    if (name !== op || typeof fn !== 'function') return fn;
    return (...args: unknown[]): unknown => {
      calls += 1;
      if (calls === Number(nth)) process.kill(process.pid, 'SIGKILL');
      return Reflect.apply(fn, real, args);
    };
  },
}) as WriterFs;
const payload = new Map(
  Object.entries(JSON.parse(json) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v)]),
);
await writeAtomic(target, payload, { mode: 0o440, fs: crashing });
