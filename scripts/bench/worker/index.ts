// The benches' own Worker (wrangler.toml beside it): the real app, plus /__bench/* routes the
// real Worker must never have. The app publishes to rooms only over RPC, so nobody on the
// Internet can push events to a user's sockets; here a bench script may.
import { DurableObject } from "cloudflare:workers";
import { createApp } from "../../../src/app";
import { type Bindings, loadConfig } from "../../../src/lib/env";
import { databaseFor } from "../../../src/lib/services";
import { sessionRoom } from "../../../src/modules/sessions/room";
import { getSessionDetail } from "../../../src/modules/sessions/service";
import type { RoomEvent } from "../../../src/realtime/protocol";
import { roomStub } from "../../../src/realtime/rooms";

export { SessionRoom } from "../../../src/index";

type BenchBindings = Bindings & { BARE_RELAY: DurableObjectNamespace<BareRelayRoom> };

/**
 * bench:stream's baseline: a room that only accepts sockets and sends them what it is given —
 * no authentication, no storage, no seq. With the bare route below it is the same path a token
 * takes (upstream → the Worker's fetch stream → RPC to a Durable Object → WebSocket) doing
 * nothing else.
 */
export class BareRelayRoom extends DurableObject<BenchBindings> {
  override async fetch(): Promise<Response> {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  send(text: string): void {
    for (const socket of this.ctx.getWebSockets()) socket.send(text);
  }
}

const app = createApp();

export default {
  async fetch(request, env, ctx) {
    const { pathname, searchParams } = new URL(request.url);

    // bench:api's baseline: the GET route's single query through the same driver, nothing else.
    const session = /^\/__bench\/sessions\/([^/]+)$/.exec(pathname);
    if (session && request.method === "GET") {
      const loaded = loadConfig(env);
      if (!loaded.ok) return Response.json({ invalidVariables: loaded.invalidVariables }, { status: 500 });
      const detail = await getSessionDetail(databaseFor(loaded.config), searchParams.get("userId") ?? "", session[1]!);
      return detail ? Response.json(detail) : new Response(null, { status: 404 });
    }

    // bench:room: each event through the room's RPC publish, awaited one by one, so the room
    // numbers them in the order they were sent.
    const room = /^\/__bench\/rooms\/([^/]+)\/publish$/.exec(pathname);
    if (room && request.method === "POST") {
      const stub = roomStub(env, sessionRoom(room[1]!));
      const seqs: number[] = [];
      for (const event of await request.json<RoomEvent[]>()) seqs.push((await stub.publish(event)).seq);
      return Response.json({ seqs });
    }

    // bench:stream's baseline: the socket of a bare relay room, and a run that sends the given
    // chat request to the AI upstream and relays each chunk of its stream, as read, to the room.
    const bare = /^\/__bench\/bare-relay\/([^/]+)\/(ws|run)$/.exec(pathname);
    if (bare) {
      const stub = env.BARE_RELAY.getByName(bare[1]!);
      if (bare[2] === "ws") return stub.fetch(request);
      const upstream = await fetch(`${env.OPENAI_BASE_URL}/chat/completions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${env.OPENAI_API_KEY}`, "Content-Type": "application/json" },
        body: request.body,
      });
      const reader = upstream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let sent = Promise.resolve();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        const text = chunk.value;
        sent = sent.then(() => stub.send(text));
      }
      await sent;
      return new Response(null, { status: 204 });
    }

    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<BenchBindings>;
