// Agent-private state in stateDir (a tmpfs the app never mounts): per secret source the backend version, the
// time of the last good fetch and the lease; per file the digest of what was written; and each provider's own
// exportState() (e.g. a Vault token). Classic mode's sidecar, or a restarted native sidecar, resumes from it
// instead of fetching again, so dynamic credentials are not issued twice. Written atomically (temp + rename),
// mode 0600. File format: state.json, { "version": 1, ... } as StateFile below.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod/mini';

export const STATE_FILE = 'state.json';

const leaseSchema = z.object({
  id: z.string(),
  durationMs: z.number(),
  renewable: z.boolean(),
  renewedAt: z.number(),
  issuedAt: z.number(),
});

const stateSchema = z.object({
  version: z.literal(1),
  /** Hash of the files part of the agent config: state from another config is ignored. */
  configHash: z.string(),
  savedAt: z.number(),
  sources: z.record(
    z.string(),
    z.object({
      version: z.string(),
      fetchedAt: z.number(),
      lease: z.optional(leaseSchema),
      issuedDurationMs: z.optional(z.number()),
    }),
  ),
  /** File name -> sha256 (hex) of the bytes written. */
  files: z.record(z.string(), z.string()),
  providers: z.record(z.string(), z.unknown()),
});

export type StateFile = z.infer<typeof stateSchema>;
export type SourceState = StateFile['sources'][string];

export function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function configHash(files: unknown): string {
  return createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16);
}

/** Reads the state; undefined when there is none or it does not parse (then the agent fetches afresh). */
export async function loadState(stateDir: string): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path.join(stateDir, STATE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = stateSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function saveState(stateDir: string, state: StateFile): Promise<void> {
  const tmp = path.join(stateDir, `.${STATE_FILE}.${process.pid}.tmp`);
  try {
    await fs.writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
    await fs.rename(tmp, path.join(stateDir, STATE_FILE));
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
}
