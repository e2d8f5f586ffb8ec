// Strict Go-style durations ("90s", "1h30m", "500ms"). Lenient parsers accept "10" or "1h 30m";
// config must not, so anything outside the grammar is an error the caller turns into a message.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const TERM = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Parses a Go-style duration into milliseconds, or returns undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '' || text.length > 64) return undefined;
  TERM.lastIndex = 0;
  let total = 0;
  while (TERM.lastIndex < text.length) {
    const match = TERM.exec(text);
    if (match === null) return undefined;
    const [, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
    total += Number(amount) * UNIT_MS[unit];
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** Formats milliseconds as the shortest Go-style duration, for messages and rendered defaults. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('');
}
