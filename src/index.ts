import { createApp } from "./app";
import type { Bindings } from "./lib/env";

export { SessionRoom } from "./realtime/session-room";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Bindings>;
