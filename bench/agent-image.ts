// How the agent image runs the bundle, read from Dockerfile.agent's final stage: the node flags of its
// ENTRYPOINT (between node and the bundle) and its ENV. The bench starts the agent the same way, so its
// figures are the image's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../scripts/build.ts';
import { argsOf, execForm, keyValuePairs, parseDockerfile } from '../test/cluster/dockerfile.ts';

export interface AgentLaunch {
  /** Node flags before the bundle, e.g. --max-semi-space-size=1. */
  readonly nodeFlags: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export function agentImageLaunch(): AgentLaunch {
  const { stages } = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile.agent'), 'utf8'), 'Dockerfile.agent');
  const final = stages.at(-1);
  if (final === undefined) throw new Error('Dockerfile.agent has no stage');
  const entrypoint = execForm(argsOf(final, 'ENTRYPOINT').at(-1) ?? '') ?? [];
  const env = Object.fromEntries(argsOf(final, 'ENV').flatMap((args) => keyValuePairs(args, {})));
  return { nodeFlags: entrypoint.slice(1, -1), env };
}
