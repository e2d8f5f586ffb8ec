// Names that are part of the contract between the webhook, the agent, the CLI and users (`kubectl logs -c …`).

export const ANNOTATION_PREFIX = 'sidekey.io/';
export const AGENT_CONTAINER = 'sidekey-agent';
/**
 * Reserved, like STATE_VOLUME: the names of the init container and agent-only volume of `classic` mode (removed;
 * Sidekey needs native sidecars). A pod copied from such an injection is still recognised as Sidekey's.
 */
export const INIT_CONTAINER = 'sidekey-init';
/** Label on every injected pod (value "true"): what a PodMonitor selects the agents by. */
export const INJECTED_LABEL = 'sidekey.io/injected';
/** The tmpfs volume shared with app containers. */
export const SECRETS_VOLUME = 'sidekey-secrets';
/** Reserved (see INIT_CONTAINER). */
export const STATE_VOLUME = 'sidekey-state';
/** Where the agent container mounts the secrets volume. */
export const AGENT_SECRETS_DIR = '/sidekey/secrets';
export const DEFAULT_MOUNT_PATH = '/var/run/secrets/sidekey';
/** The port of /healthz, /readyz, /startup and /metrics inside the agent container. */
export const AGENT_PORT = 8099;
/** Env var carrying the agent configuration as JSON. */
export const CONFIG_ENV = 'SIDEKEY_CONFIG';
/**
 * Env var the webhook sets on the reload container (value: the container name). The agent finds the
 * container's main process in the shared PID namespace as the topmost process carrying it
 * (children inherit the environment, so the main process is the one whose parent lacks it).
 */
export const RELOAD_TARGET_ENV = 'SIDEKEY_RELOAD_TARGET';
/**
 * No secret is polled more often than this, whatever the annotation says: 1,000 pods x 5 secrets every 10 s is
 * already 43 M backend calls a day. The agent enforces it; the webhook's minRefresh setting may not go below it.
 */
export const REFRESH_FLOOR_MS = 10_000;
