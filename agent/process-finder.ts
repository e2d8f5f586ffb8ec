// Finds the main process of the reload container in a shared PID namespace (shareProcessNamespace: true).
//
// Design: the webhook sets env RELOAD_TARGET_ENV=<container name> on that container only. Every process started
// in it (its entrypoint, the children it forks, and `kubectl exec` sessions) inherits the variable, and
// /proc/<pid>/environ shows the environment a process started with. So:
//   1. candidates = processes whose environ holds RELOAD_TARGET_ENV=<container> (environ of other UIDs is
//      unreadable and skipped: a process we could not signal anyway);
//   2. the main process is a topmost candidate: its parent (from /proc/<pid>/stat) is not a candidate. A shell
//      entrypoint that forks the app is signalled, not the app: point the entrypoint at `exec app`;
//   3. among several topmost candidates (an exec session is topmost too) the one started first wins (field 22
//      of stat, starttime, in clock ticks since boot), then the lowest pid;
//   4. right before kill(2) the pid is checked again: same starttime and still carrying the marker, so a pid
//      reused by another process after the scan is never signalled (Node has no pidfd).
// The agent's own process is never a candidate (the webhook does not set the marker on agent containers).
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { RELOAD_TARGET_ENV } from '../injector/constants.ts';

export interface ProcessIdentity {
  readonly pid: number;
  /** starttime from /proc/<pid>/stat: with the pid, it identifies one process for its lifetime. */
  readonly startTime: bigint;
}

interface ProcInfo extends ProcessIdentity {
  readonly ppid: number;
}

/**
 * Parses /proc/<pid>/stat; comm (field 2) may hold spaces and parentheses, so fields are counted after the last ")".
 */
export function parseStat(text: string): { ppid: number; startTime: bigint } | undefined {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  const start = fields[19];
  if (!Number.isInteger(ppid) || start === undefined || !/^\d+$/.test(start)) return undefined;
  return { ppid, startTime: BigInt(start) };
}

async function readInfo(procRoot: string, pid: number, marker: string): Promise<ProcInfo | undefined> {
  try {
    const environ = await fs.readFile(path.join(procRoot, String(pid), 'environ'));
    if (!environ.toString('utf8').split('\0').includes(marker)) return undefined;
    const stat = parseStat(await fs.readFile(path.join(procRoot, String(pid), 'stat'), 'utf8'));
    return stat === undefined ? undefined : { pid, ...stat };
  } catch {
    return undefined; // gone, or another UID's environ
  }
}

export async function findMainProcess(container: string, procRoot = '/proc'): Promise<ProcessIdentity | undefined> {
  const marker = `${RELOAD_TARGET_ENV}=${container}`;
  const pids = (await fs.readdir(procRoot))
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => pid !== process.pid);
  const infos = (await Promise.all(pids.map((pid) => readInfo(procRoot, pid, marker)))).filter((i) => i !== undefined);
  const candidates = new Set(infos.map((i) => i.pid));
  const topmost = infos.filter((i) => !candidates.has(i.ppid));
  topmost.sort((a, b) => (a.startTime === b.startTime ? a.pid - b.pid : a.startTime < b.startTime ? -1 : 1));
  const main = topmost[0];
  return main === undefined ? undefined : { pid: main.pid, startTime: main.startTime };
}

/** True when `identity` still names the same marked process (guards against pid reuse). */
export async function stillSameProcess(
  identity: ProcessIdentity,
  container: string,
  procRoot = '/proc',
): Promise<boolean> {
  const info = await readInfo(procRoot, identity.pid, `${RELOAD_TARGET_ENV}=${container}`);
  return info?.startTime === identity.startTime;
}
