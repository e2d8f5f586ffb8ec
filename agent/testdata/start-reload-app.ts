// Test helper: starts testdata/reload-app.ts as the main process of "container" (the reload marker in its env)
// and waits until it and its worker are up.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { RELOAD_TARGET_ENV } from '../../injector/constants.ts';

export interface ReloadApp {
  readonly child: ChildProcess;
  output(): string;
}

export async function startReloadApp(container: string): Promise<ReloadApp> {
  const app = path.join(import.meta.dirname, 'reload-app.ts');
  const child = spawn(process.execPath, [app], {
    env: { ...process.env, [RELOAD_TARGET_ENV]: container },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  while (!out.includes('ready')) await new Promise((resolve) => setTimeout(resolve, 20));
  return { child, output: () => out };
}
