// The provider names: the one list both sides share. The agent's configuration schema and its lazy loader are
// typed by it, so it stays free of the declarations (which carry the webhook's settings schemas).
export const PROVIDERS = ['aws', 'vault', 'file'] as const;
export type Provider = (typeof PROVIDERS)[number];
