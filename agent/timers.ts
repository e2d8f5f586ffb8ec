// The one timer interface of the agent: the refresh loop, the reloader, init's deadline and the Vault token
// session all wait through it, so a test hands each the same kind of fake (recording delays, or a fake clock).
import { clampDelay } from './timing.ts';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

function clearNodeTimer(handle: unknown): void {
  clearTimeout(handle as NodeJS.Timeout);
}

/** Node's timers; delays are clamped (setTimeout fires after 1 ms for anything above 2^31-1 ms). */
export const nodeTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)),
  clearTimeout: clearNodeTimer,
};

/** Node's timers for background upkeep (token renewal): a pending one does not keep the process alive. */
export const backgroundTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)).unref(),
  clearTimeout: clearNodeTimer,
};
