/** Replaced at build time by esbuild's `define`; the fallback serves tests run from source. */
declare const __PADDOCK_VERSION__: string | undefined;

export const AGENT_VERSION: string = typeof __PADDOCK_VERSION__ === "string" ? __PADDOCK_VERSION__ : "0.0.0-dev";
