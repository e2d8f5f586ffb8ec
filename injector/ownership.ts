// Who owns the files. Without capabilities (Pod Security "restricted" drops them all) the agent can only give
// files to its own UID and groups, and can only signal processes of its own UID. So the agent runs as the
// target container's UID when the pod spec states it; with an fsGroup files are group-readable; with neither
// they are world-readable inside the pod-private volume, and admission says how to tighten that.
import type { Container, PodSpec } from './pod-shape.ts';
import { defined } from './defined.ts';

/** The UID/GID of the agent when the app's are unknown (distroless "nonroot"). */
export const DEFAULT_AGENT_UID = 65532;

export interface Ownership {
  readonly runAsUser: number;
  readonly runAsGroup?: number;
  readonly fileMode: number;
  readonly fileGroup?: number;
  readonly warnings: readonly string[];
}

export interface OwnershipInput {
  readonly spec: PodSpec;
  /** The containers that mount the files. */
  readonly targets: readonly Container[];
  /** The container to signal (its UID is then required and already checked by the caller). */
  readonly signalTarget?: Container;
  /** sidekey.io/file-mode, when set. */
  readonly fileMode?: number;
}

export function effectiveUid(spec: PodSpec, container: Container): number | undefined {
  return container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
}

function effectiveGid(spec: PodSpec, container: Container): number | undefined {
  return container.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup;
}

function usable(uid: number | undefined): uid is number {
  return uid !== undefined && uid > 0;
}

/** Container names for a warning, capped so the warning stays short. */
function names(list: readonly string[]): string {
  return list.length > 3 ? `${list.slice(0, 3).join(', ')} and ${list.length - 3} more` : list.join(', ');
}

interface FileAccess {
  readonly fileMode: number;
  readonly fileGroup?: number;
  readonly warning?: string;
}

/** The mode (and group) an explicit `file-mode` gets; a warning when some targets may not read the files. */
function explicitAccess(
  fileMode: number,
  fsGroup: number | undefined,
  strangers: readonly string[],
  runAsUser: number,
): FileAccess {
  const fileGroup = fsGroup !== undefined && (fileMode & 0o040) !== 0 ? fsGroup : undefined;
  const access = { fileMode, ...defined({ fileGroup }) };
  if ((fileMode & 0o004) !== 0 || fileGroup !== undefined || strangers.length === 0) return access;
  return {
    ...access,
    warning: `file-mode ${fileMode.toString(8).padStart(4, '0')}: ${names(strangers)} may not run as UID ${runAsUser} and may not read the files`,
  };
}

/** The tightest mode every target can read: 0400 for one UID, 0440 with an fsGroup, else 0444 with a warning. */
function defaultAccess(fsGroup: number | undefined, strangers: readonly string[]): FileAccess {
  if (strangers.length === 0) return { fileMode: 0o400 };
  if (fsGroup !== undefined) return { fileMode: 0o440, fileGroup: fsGroup };
  return {
    fileMode: 0o444,
    warning: `files are world-readable (0444) in the pod: set runAsUser on ${names(strangers)} for 0400, or an fsGroup for 0440`,
  };
}

export function decideOwnership(input: OwnershipInput): Ownership {
  const { spec, targets } = input;
  const uids = targets.map((c) => effectiveUid(spec, c));
  const first = uids[0];
  const anchor = input.signalTarget ?? (usable(first) && uids.every((u) => u === first) ? targets[0] : undefined);
  const anchorUid = anchor === undefined ? undefined : effectiveUid(spec, anchor);
  const runAsUser = usable(anchorUid) ? anchorUid : DEFAULT_AGENT_UID;
  const gid = anchor === undefined ? DEFAULT_AGENT_UID : effectiveGid(spec, anchor);
  const fsGroup = spec.securityContext?.fsGroup;
  const strangers = targets.filter((_, i) => uids[i] !== runAsUser).map((c) => c.name);
  const { fileMode, fileGroup, warning } =
    input.fileMode === undefined
      ? defaultAccess(fsGroup, strangers)
      : explicitAccess(input.fileMode, fsGroup, strangers, runAsUser);
  return {
    runAsUser,
    ...defined({ runAsGroup: gid }),
    fileMode,
    ...defined({ fileGroup }),
    warnings: warning === undefined ? [] : [warning],
  };
}
