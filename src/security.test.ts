import { beforeAll, describe, expect, it } from "vitest";
import { call, callAs, clearBucket, clerkId, forgedToken, json, mintToken, resetDatabase } from "../test/helpers";
import { type ApiDocument, documentedNotFound, documentedRoutes, isAuthenticated, notFoundCodes, pointersOf, requestFor, rows, seedUser } from "../test/routes";
import { createApp } from "./app";
import type { ErrorBody } from "./lib/envelope";
import type { ErrorCode } from "./lib/errors";

// The routes come from the app itself — its API document, and for the completeness check its
// router — so a new authenticated route gets every case below without this file changing.
// test/routes.ts holds how to make each kind of resource a route can name.

const document = createApp().getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Charisma API", version: "test" } }) as unknown as ApiDocument;
const authenticated = documentedRoutes(document).filter(isAuthenticated);

describe("every route", () => {
  it("the app serves is in its API document as authenticated, or else answers without a bearer token", async () => {
    const template = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");
    const served = [...new Set(createApp().routes.filter((route) => route.method !== "ALL").map((route) => `${route.method} ${template(route.path)}`))];
    const guarded = authenticated.map((route) => route.name);
    expect(served).toEqual(expect.arrayContaining(guarded));
    for (const name of served.filter((entry) => !guarded.includes(entry))) {
      const [method, path] = name.split(" ") as [string, string];
      const response = await call(path.replace(/\{\w+\}/g, "x"), { method });
      const text = await response.text();
      const code = response.status === 401 ? (JSON.parse(text) as ErrorBody).error.code : undefined;
      expect(["UNAUTHORIZED", "TOKEN_EXPIRED"], `${name} wants a bearer token but its document does not say so`).not.toContain(code);
    }
  });
});

for (const route of authenticated) {
  describe(route.name, () => {
    let owner: Awaited<ReturnType<typeof seedUser>>;
    let stranger: Awaited<ReturnType<typeof seedUser>>;
    beforeAll(async () => {
      await resetDatabase();
      await clearBucket();
      owner = await seedUser();
      stranger = await seedUser();
    });

    it("answers 401 without a valid bearer token", async () => {
      const now = Math.floor(Date.now() / 1000);
      const credentials: Array<[string, string | undefined, ErrorCode]> = [
        ["no token", undefined, "UNAUTHORIZED"],
        ["an expired token", await mintToken(clerkId(), { nowSeconds: now - 600, ttlSeconds: 60 }), "TOKEN_EXPIRED"],
        ["a token signed by another key", await forgedToken(), "UNAUTHORIZED"],
        ["a token for another party", await mintToken(clerkId(), { azp: "https://elsewhere.example" }), "UNAUTHORIZED"],
        // Signed with the trusted key, yet not the instance's own: another issuer, another key id.
        ["a token from another issuer", await mintToken(clerkId(), { claims: { iss: "https://clerk.elsewhere.example" } }), "UNAUTHORIZED"],
        ["a token naming another key", await mintToken(clerkId(), { header: { kid: "ins_elsewhere" } }), "UNAUTHORIZED"],
      ];
      const request = requestFor(route, () => owner.owned);
      const withoutToken = request.json === undefined ? {} : { headers: { "Content-Type": "application/json" }, body: JSON.stringify(request.json) };
      for (const [what, token, code] of credentials) {
        const response = token
          ? await callAs(token, request.path, { method: request.method, json: request.json })
          : await call(request.path, { method: request.method, ...withoutToken });
        expect(response.status, what).toBe(401);
        expect(await json(response), what).toMatchObject({ success: false, error: { code } });
      }
    });

    if (route.operation.requestBody?.content["application/json"]) {
      it("answers 400 to a body that is not JSON, or not the right JSON", async () => {
        // The caller's own resources, so nothing but the body can be wrong.
        const { path } = requestFor(route, () => stranger.owned);
        const junk: Array<[string, string, ErrorCode]> = [
          ["malformed JSON", '{"oops', "INVALID_JSON"],
          ["JSON of the wrong shape", "[1, 2, 3]", "VALIDATION_ERROR"],
        ];
        for (const [what, body, code] of junk) {
          const refused = await call(path, { method: route.method, headers: { Authorization: `Bearer ${stranger.token}`, "Content-Type": "application/json" }, body });
          expect(refused.status, what).toBe(400);
          const details = code === "VALIDATION_ERROR" ? { details: { target: "json" } } : {};
          expect(await json(refused), what).toMatchObject({ success: false, error: { code, ...details } });
        }
      });
    }

    const pointers = pointersOf(route);
    if (pointers.length > 0) {
      it("answers another user's resources with its own 404, and changes nothing", async () => {
        // Every named resource the owner's (the outermost one answers), then, when there are
        // several, one at a time among the caller's own.
        const all = pointers.map((_, pointer) => pointer);
        const victimSets = pointers.length > 1 ? [all, ...all.map((pointer) => [pointer])] : [all];
        const before = await rows();
        for (const victims of victimSets) {
          const code = notFoundCodes[pointers[victims[0]!]!];
          const request = requestFor(route, (pointer) => (victims.includes(pointer) ? owner.owned : stranger.owned));
          const response = await callAs(stranger.token, request.path, { method: request.method, json: request.json });
          const body = await json(response);
          expect({ status: response.status, body }, request.path).toMatchObject({ status: 404, body: { success: false, error: { code } } });
          expect(documentedNotFound(route), `${route.name} documents ${code}`).toContain(code);
        }
        expect(await rows()).toEqual(before);
      });
    }
  });
}
