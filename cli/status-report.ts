// What `sidekey status` prints: one row per injected pod, from its agent's /status (agent/status-schema.ts) or
// the reason it could not be read, as a table or as JSON. Pure: the cluster side is cli/status-pods.ts.
import type { AgentStatus, Freshness } from '../agent/status-schema.ts';

/**
 * A pod's row: its agent's state; `unreachable` when the agent could not be read (not running yet, the proxy
 * refused, a timeout, an answer that is not a status); `init-only` for a pod whose agent wrote once and exited;
 * `finished` for a pod that has run to its end (a Job's), whose agent has stopped with it.
 */
export type PodState = Freshness | 'unreachable' | 'init-only' | 'finished';

export interface PodReport {
  readonly namespace: string;
  readonly name: string;
  readonly state: PodState;
  /** The agent's document, as read and validated. */
  readonly status?: AgentStatus;
  /** Why there is no status (unreachable), or what the init-only agent did. */
  readonly reason?: string;
}

/** 1 when a pod is failing or its agent cannot be read, else 0 (stale, init-only and finished pods do not count). */
export function exitCodeOf(reports: readonly PodReport[]): number {
  return reports.some((r) => r.state === 'failing' || r.state === 'unreachable') ? 1 : 0;
}

/** `12s`, `5m`, `3h`, `2d`: the age of `at` as the agent's clock (`now`) saw it. */
export function age(at: string, now: string): string {
  const seconds = Math.max(0, Math.round((Date.parse(now) - Date.parse(at)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

/** The first failing file's code and name (`NOT_FOUND (db-password)`), or a failed write's code. */
function lastError(status: AgentStatus): string {
  if (status.writeError !== undefined) return `${status.writeError.code} (write)`;
  const failing = status.files.find((f) => f.lastError !== undefined);
  if (failing?.lastError === undefined) return status.counts.failing > 0 ? 'see -o json' : '-';
  const others = status.counts.failing - 1;
  return `${failing.lastError.code} (${failing.name}${others > 0 ? ` +${others}` : ''})`;
}

/** The most recent good refresh of any file, as an age. */
function lastRefresh(status: AgentStatus): string {
  const times = status.files.flatMap((f) => (f.lastGoodAt === undefined ? [] : [Date.parse(f.lastGoodAt)]));
  return times.length === 0 ? 'never' : `${age(new Date(Math.max(...times)).toISOString(), status.now)} ago`;
}

function reloads(status: AgentStatus): string {
  const { kind, ok, failed, last } = status.reloads;
  if (kind === 'none') return '-';
  const counts = failed > 0 ? `${ok} ok, ${failed} failed` : `${ok}`;
  return last === undefined ? counts : `${counts} (last ${last.result} ${age(last.at, status.now)} ago)`;
}

function row(report: PodReport, allNamespaces: boolean): string[] {
  const pod = allNamespaces ? [report.namespace, report.name] : [report.name];
  const { status } = report;
  if (status === undefined) return [...pod, report.state, '-', report.reason ?? '-', '-', '-'];
  const { fresh, stale, failing } = status.counts;
  return [
    ...pod,
    report.state,
    `${fresh}/${stale}/${failing}`,
    lastError(status),
    lastRefresh(status),
    reloads(status),
  ];
}

/** Columns padded to their widest cell; no trailing blanks. */
export function formatTable(reports: readonly PodReport[], allNamespaces: boolean): string {
  if (reports.length === 0) return '';
  const header = [
    ...(allNamespaces ? ['NAMESPACE'] : []),
    'POD',
    'STATE',
    'FILES fresh/stale/failing',
    'LAST ERROR',
    'LAST REFRESH',
    'RELOADS',
  ];
  const rows = [header, ...reports.map((r) => row(r, allNamespaces))];
  const widths = header.map((_, i) => Math.max(...rows.map((cells) => (cells[i] ?? '').length)));
  return rows
    .map((cells) =>
      cells
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/** `-o json`: every pod with its agent's whole document or the reason it has none. */
export function formatJson(reports: readonly PodReport[]): string {
  return `${JSON.stringify({ pods: reports }, null, 2)}\n`;
}
