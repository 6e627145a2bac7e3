import { env } from "cloudflare:test";

/** One push as the local Expo received it. */
export type ExpoPush = { to: string; title?: string; body: string; data?: Record<string, unknown> };

/** What the local Expo recorded of one request (see local/expo/server.ts). */
export type ExpoRequest = { path: "send" | "getReceipts"; gzip: boolean; authorization: string | null; status: number; messages?: ExpoPush[]; ids?: string[] };

/** The local Expo's control endpoints: `/__messages`, `/__reset`, `/__faults` (a POST when a body is given). */
export async function expoControl(path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${env.TEST_EXPO_URL}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

/** Every request the local Expo received, in order. */
export const expoRequests = async () => ((await expoControl("/__messages")) as { requests: ExpoRequest[] }).requests;

/** Every push the local Expo was asked to send, in order. */
export const expoPushes = async () => (await expoRequests()).filter((request) => request.path === "send").flatMap((request) => request.messages ?? []);

export const resetExpo = () => expoControl("/__reset", {});
