// The benches' own Worker (wrangler.toml beside it): the real app, plus /__bench/* routes the
// real Worker must never have. The app publishes to rooms only over RPC, so nobody on the
// Internet can push events to a user's sockets; here a bench script may.
import { createApp } from "../../../src/app";
import { type Bindings, loadConfig } from "../../../src/lib/env";
import { databaseFor } from "../../../src/lib/services";
import { sessionRoom } from "../../../src/modules/sessions/room";
import { getSessionDetail } from "../../../src/modules/sessions/service";
import type { RoomEvent } from "../../../src/realtime/protocol";
import { roomStub } from "../../../src/realtime/rooms";

export { SessionRoom } from "../../../src/index";

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

    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Bindings>;
