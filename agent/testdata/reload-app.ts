// Test helper: a stand-in app for signal reloads. It prints "main:<signal>" on SIGHUP and forks a worker (which
// inherits the environment, reload marker included) that prints "worker:<signal>"; "ready" once both run.
import { spawn } from 'node:child_process';

if (process.argv[2] === 'worker') {
  process.on('SIGHUP', () => {
    process.stdout.write('worker:SIGHUP\n');
  });
  process.stdout.write('worker:ready\n');
} else {
  process.on('SIGHUP', () => {
    process.stdout.write('main:SIGHUP\n');
  });
  const worker = spawn(process.execPath, [import.meta.filename, 'worker'], { stdio: ['ignore', 'pipe', 'inherit'] });
  worker.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk.toString().replace('worker:ready', 'ready'));
  });
  process.on('SIGTERM', () => {
    worker.kill();
    process.exit(0);
  });
}
setInterval(() => undefined, 60_000);
