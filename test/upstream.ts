import { env } from "cloudflare:test";
import type { Fault, RecordedRequest } from "../local/ai-upstream/types";


/** The local AI upstream's control API (faults, recorded requests), for tests in workerd. */
function control(path: string, init?: RequestInit) {
  return fetch(`${env.TEST_AI_UPSTREAM_URL}/__control/${path}`, init);
}

/** Queues a fault for the next `times` requests of `vendor` whose body contains `match`. */
export async function injectFault(fault: Fault, options: { vendor?: "openai" | "anthropic" | "gemini" | "any"; match?: string; times?: number } = {}) {
  const response = await control("faults", { method: "POST", body: JSON.stringify({ vendor: options.vendor ?? "any", match: options.match, times: options.times ?? 1, fault }) });
  if (!response.ok) throw new Error(`fault not queued: ${response.status}`);
}

export async function upstreamRequests(): Promise<RecordedRequest[]> {
  return (await (await control("requests")).json()) as RecordedRequest[];
}

export async function resetUpstream(): Promise<void> {
  await control("reset", { method: "POST" });
}
