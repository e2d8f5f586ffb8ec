// Types for the prom-client modules that agent/metrics.ts imports one by one (prom-client 15 has no "exports"
// map, so its lib/ files are importable; each exports its class or function as module.exports).
declare module 'prom-client/lib/registry.js' {
  import { Registry } from 'prom-client';
  export = Registry;
}
declare module 'prom-client/lib/counter.js' {
  import { Counter } from 'prom-client';
  export = Counter;
}
declare module 'prom-client/lib/gauge.js' {
  import { Gauge } from 'prom-client';
  export = Gauge;
}
declare module 'prom-client/lib/histogram.js' {
  import { Histogram } from 'prom-client';
  export = Histogram;
}
// Each default-metric module registers its metrics on the registry, names prefixed.
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';
  function register(registry: Registry, config: { prefix: string }): void;
  export = register;
}
