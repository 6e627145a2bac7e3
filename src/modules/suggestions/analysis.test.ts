import { eq } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { callAs, json, resetDatabase, signedInUser, testDb } from "../../../test/helpers";
import { resetQStash, useJobPump } from "../../../test/jobs";
import { resetUpstream, upstreamRequests } from "../../../test/upstream";
import { openSocket } from "../../../test/ws";
import { sessions, suggestionGenerations } from "../../db/schema";
import { chatAnalysisSchema } from "../../realtime/frames";
import { investmentOf } from "./analysis";

type Message = { sender: "user" | "match"; text: string };

const english: Message[] = [
  { sender: "match", text: "Hey! I saw you like hiking, what was your best trail this year?" },
  { sender: "user", text: "Probably the coast path in Cornwall" },
  { sender: "match", text: "No way, I want to do that one. How long did it take you?" },
];
const spanish: Message[] = [
  { sender: "match", text: "¡Hola! ¿Qué tal tu fin de semana? Yo estoy muy cansada pero fue genial" },
  { sender: "user", text: "Muy bien, gracias. Fui a la playa con unos amigos, ¿y tú qué hiciste?" },
  { sender: "match", text: "Estuve en un concierto, también fue increíble. ¿Te gusta la música en vivo?" },
];
// Words of the local upstream's Spanish and German vocabularies that its English one lacks.
const SPANISH = /\b(eso|suena|cuéntame|sobre|semana|encanta|sitio|probado|nuevo|centro|senderismo|deberíamos|canciones|jueves|copas)\b/u;
const GERMAN = /\b(klingt|erzähl|über|wochenende|liebe|diesen|innenstadt|probiert|wäre|einem|donnerstag)\b/u;
const ENGLISH_ONLY = /\b(weekend|hiking|playlists|thursday|downtown)\b/;

async function generatedIn(messages: Message[], preferences?: Record<string, unknown>) {
  const user = await signedInUser();
  if (preferences) expect((await callAs(user.token, "/api/v1/users/me", { method: "PUT", json: { preferences } })).status).toBe(200);
  const created = await json<{ id: string }>(await callAs(user.token, "/api/v1/sessions", { method: "POST", json: { type: "text", messages } }));
  if (!created.success) throw new Error("session not created");
  const sessionId = created.data.id;
  const socket = await openSocket(`/api/v1/sessions/${sessionId}/ws`);
  socket.send({ type: "authenticate", token: user.token });
  await socket.frame("authenticated");
  const started = await json<{ generationId: string }>(await callAs(user.token, `/api/v1/sessions/${sessionId}/generate-suggestions`, { method: "POST", json: {} }));
  if (!started.success) throw new Error("not started");
  const completed = await socket.frame("suggestion.completed", 0, 15_000);
  const detail = await json<Record<string, unknown> & { analysis: Record<string, unknown> | null; latestGeneration: { language: string | null } }>(
    await callAs(user.token, `/api/v1/sessions/${sessionId}`),
  );
  if (!detail.success) throw new Error("no detail");
  return { ...user, sessionId, socket, generationId: started.data.generationId, completed, detail: detail.data };
}

const texts = (completed: object) => ((completed as { suggestions?: Array<{ text: string }> }).suggestions ?? []).map((suggestion) => suggestion.text).join(" ");

describe("chat analysis", () => {
  useJobPump();
  beforeEach(async () => {
    await resetDatabase();
    await resetUpstream();
    await resetQStash();
  });

  it("comes from the phase call (no extra AI call), is stored, sent once before the suggestions, and shown in the detail and the list", async () => {
    const run = await generatedIn(english);
    const types = run.socket.frames.map((frame) => frame.type);
    expect(types.filter((type) => type === "analysis")).toHaveLength(1);
    expect(types.indexOf("phase")).toBeLessThan(types.indexOf("analysis"));
    expect(types.indexOf("analysis")).toBeLessThan(types.indexOf("suggestion.started"));

    const frame = run.socket.frames.find((f) => f.type === "analysis")!;
    const { type: _type, seq: _seq, ts: _ts, generationId, ...analysis } = frame as Record<string, unknown>;
    expect(generationId).toBe(run.generationId);
    expect(chatAnalysisSchema.parse(analysis)).toEqual(analysis);
    expect(analysis).toMatchObject({ language: "en", investment: investmentOf(english) });
    expect(run.detail.analysis).toEqual(analysis);

    const [stored] = await testDb().select().from(sessions).where(eq(sessions.id, run.sessionId));
    expect(stored).toMatchObject({ interest: analysis.interest, language: "en", analysedAt: expect.any(Date) });
    const list = await json<{ items: Array<{ id: string; interest: number | null; phase: number | null }> }>(await callAs(run.token, "/api/v1/sessions"));
    if (!list.success) throw new Error("no list");
    expect(list.data.items).toEqual([expect.objectContaining({ id: run.sessionId, interest: analysis.interest, phase: stored!.phase })]);

    // One structured call read the chat; the other model call wrote the suggestions.
    const chats = (await upstreamRequests()).filter((request) => request.path === "/v1/chat/completions");
    expect(chats).toHaveLength(2);
    expect(chats.filter((request) => JSON.stringify(request.body).includes("Read this dating-app conversation"))).toHaveLength(1);
    // The suggestions prompt got the analysis's next move and signals as data.
    const suggestionsRequest = JSON.stringify(chats.find((request) => JSON.stringify(request.body).includes('"suggestions"'))!.body);
    expect(suggestionsRequest).toContain(JSON.stringify(analysis.nextMove).slice(1, -1));
  });

  it("keeps no analysis, without an error, for a conversation of one message", async () => {
    const run = await generatedIn([{ sender: "match", text: "Hey there, nice profile!" }]);
    expect(run.socket.frames.map((frame) => frame.type)).not.toContain("analysis");
    expect(run.detail.analysis).toBeNull();
    expect(run.detail.phase).toEqual(expect.any(Number));
    const [stored] = await testDb().select().from(sessions).where(eq(sessions.id, run.sessionId));
    expect(stored).toMatchObject({ analysis: null, interest: null, status: "ready" });
  });

  it("writes in the conversation's language: a Spanish chat gets Spanish suggestions, recorded on the generation", async () => {
    const run = await generatedIn(spanish);
    expect(run.detail.analysis).toMatchObject({ language: "es" });
    expect(texts(run.completed)).toMatch(SPANISH);
    expect(texts(run.completed)).not.toMatch(ENGLISH_ONLY);
    expect(String((run.detail.analysis as { nextMove: string }).nextMove)).toMatch(SPANISH);
    expect(run.detail.latestGeneration.language).toBe("es");
    const [generation] = await testDb().select().from(suggestionGenerations).where(eq(suggestionGenerations.id, run.generationId));
    expect(generation?.language).toBe("es");
  });

  it("writes in the user's chosen language when they set one, whatever the chat's", async () => {
    const run = await generatedIn(spanish, { language: "de" });
    // The chat is still read as Spanish; every text is German.
    expect(run.detail.analysis).toMatchObject({ language: "es" });
    expect(texts(run.completed)).toMatch(GERMAN);
    expect(texts(run.completed)).not.toMatch(SPANISH);
    expect(String((run.detail.analysis as { nextMove: string }).nextMove)).toMatch(GERMAN);
    expect(run.detail.latestGeneration.language).toBe("de");
  });
});

describe("investmentOf", () => {
  it("counts each side's messages, average length and questions, and balances their effort from -1 to 1", () => {
    expect(investmentOf(english)).toEqual({
      user: { messages: 1, averageLength: 35, questions: 0 },
      match: { messages: 2, averageLength: 60, questions: 2 },
      // effort = messages × average length + 40 per question: user 35, match 200.
      balance: -0.7,
    });
    expect(investmentOf([])).toEqual({ user: { messages: 0, averageLength: 0, questions: 0 }, match: { messages: 0, averageLength: 0, questions: 0 }, balance: 0 });
    const even = investmentOf([
      { sender: "user", text: "abcd" },
      { sender: "match", text: "wxyz" },
    ]);
    expect(even.balance).toBe(0);
    // Only the user writes: the balance is 1. Full-width question marks count.
    expect(investmentOf([{ sender: "user", text: "元気？" }])).toEqual({ user: { messages: 1, averageLength: 3, questions: 1 }, match: { messages: 0, averageLength: 0, questions: 0 }, balance: 1 });
  });
});
