import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** The Worker's vars for this run: addresses of the stand-ins the global setup started. */
    workerVars: Record<string, string>;
  }
}
