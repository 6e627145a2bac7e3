import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../lib/env";

/**
 * One room per session or opener generation: it will own the WebSockets and the numbered
 * event log (SPEC §6). Bound and migrated now so the class exists in every deployment.
 */
export class SessionRoom extends DurableObject<Bindings> {
  override async fetch(): Promise<Response> {
    return new Response("realtime is not available yet", { status: 501 });
  }
}
