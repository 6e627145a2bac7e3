import { createApp } from "./app";
import { features, roomKindsOf } from "./features";
import type { Bindings } from "./lib/env";
import { RoomObject } from "./realtime/session-room";

const app = createApp();
const roomKinds = roomKindsOf(features);

/** The rooms' Durable Object (binding SESSION_ROOM), with the room kinds the features declare. */
export class SessionRoom extends RoomObject {
  protected readonly kinds = roomKinds;
}

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Bindings>;
