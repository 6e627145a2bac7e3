import { beforeEach, describe, expect, it } from "vitest";
import { call, callAs, json, resetDatabase, signedInUser, testDb } from "../../../test/helpers";
import { magicOpeners, openerGenerations, sessions, suggestionGenerations, suggestions } from "../../db/schema";

type Insights = {
  sessions: { total: number; analysed: number };
  interest: { average: number | null; byWeek: Array<{ weekStart: string; average: number | null; sessions: number }> };
  tones: Array<{ tone: string; generated: number; liked: number; disliked: number; copied: number; sent: number }>;
  openers: { generated: number; liked: number; disliked: number };
  languages: Array<{ language: string; sessions: number }>;
};

async function insightsOf(token: string) {
  const response = await callAs(token, "/api/v1/users/me/insights");
  expect(response.status).toBe(200);
  const body = await json<Insights>(response);
  if (!body.success) throw new Error(JSON.stringify(body));
  return body.data;
}

const db = () => testDb();

type Analysis = { interest?: number | null; language?: string | null; analysedAt?: Date | null; deletedAt?: Date | null };

async function session(userId: string, analysis: Analysis = {}): Promise<string> {
  const [row] = await db()
    .insert(sessions)
    .values({ userId, type: "text", status: "ready", ...analysis })
    .returning({ id: sessions.id });
  return row!.id;
}

type Feedback = "liked" | "disliked" | "copied" | "sent" | null;

/** A completed generation on the session with one suggestion per entry: [its own tone, its feedback]. */
async function generation(sessionId: string, tone: string | null, rows: Array<[string | null, Feedback]>) {
  const [created] = await db().insert(suggestionGenerations).values({ sessionId, tone, count: rows.length, status: "completed" }).returning();
  await db()
    .insert(suggestions)
    .values(rows.map(([ownTone, feedback], rank) => ({ generationId: created!.id, sessionId, rank, tone: ownTone, text: `reply ${rank}`, feedback })));
}

async function openers(userId: string, liked: Array<boolean | null>) {
  const profile = { bio: "Climber" };
  const [created] = await db().insert(openerGenerations).values({ userId, profile, count: liked.length, status: "completed", tone: "witty" }).returning();
  await db()
    .insert(magicOpeners)
    .values(liked.map((opinion, rank) => ({ userId, generationId: created!.id, rank, profile, tone: "witty", text: `opener ${rank}`, liked: opinion })));
}

const at = (iso: string) => new Date(iso);

describe("GET /api/v1/users/me/insights", () => {
  beforeEach(resetDatabase);

  it("answers 401 without a token", async () => {
    const response = await call("/api/v1/users/me/insights");
    expect(response.status).toBe(401);
    expect(await json(response)).toMatchObject({ success: false, error: { code: "UNAUTHORIZED" } });
  });

  it("gives a user with no data zeros, a null average and empty lists", async () => {
    const { token } = await signedInUser();
    expect(await insightsOf(token)).toEqual({
      sessions: { total: 0, analysed: 0 },
      interest: { average: null, byWeek: [] },
      tones: [],
      openers: { generated: 0, liked: 0, disliked: 0 },
      languages: [],
    });
  });

  it("counts only the caller's live sessions, their suggestions' feedback per tone, and their openers", async () => {
    const alice = await signedInUser();
    const bob = await signedInUser();

    // Alice: four analysed sessions over three ISO weeks (Monday 16, 23 and 30 Nov 2026, UTC),
    // one not analysed yet, and one deleted that must not count.
    const tuesday = await session(alice.userId, { interest: 80, language: "fr", analysedAt: at("2026-11-17T10:00:00Z") });
    const thursday = await session(alice.userId, { interest: 71, language: "en", analysedAt: at("2026-11-19T18:00:00Z") });
    await session(alice.userId, { interest: 40, language: "fr", analysedAt: at("2026-11-29T23:30:00Z") }); // Sunday: still the week of the 23rd
    await session(alice.userId, { interest: 60, language: "fr", analysedAt: at("2026-11-30T00:10:00Z") });
    const notAnalysed = await session(alice.userId);
    const deleted = await session(alice.userId, { interest: 0, language: "de", analysedAt: at("2026-11-18T09:00:00Z"), deletedAt: at("2026-11-20T09:00:00Z") });

    await generation(tuesday, "playful", [["playful", "liked"], ["playful", "sent"], ["playful", null]]);
    // A suggestion without a tone of its own has its generation's.
    await generation(thursday, "witty", [["witty", "disliked"], ["witty", "copied"], [null, null]]);
    // Neither has one: the job wrote it in the default tone.
    await generation(notAnalysed, null, [[null, "copied"]]);
    await generation(deleted, "flirty", [["flirty", "liked"], ["flirty", "liked"], ["flirty", "liked"], ["flirty", "liked"], ["flirty", "liked"]]);
    await openers(alice.userId, [true, true, false, null]);

    // Bob's rows share Alice's weeks, tones and languages: none of them may reach her numbers.
    const bobs = await session(bob.userId, { interest: 10, language: "en", analysedAt: at("2026-11-17T11:00:00Z") });
    await generation(bobs, "witty", [["witty", "liked"], ["witty", "liked"], ["witty", "liked"], ["sincere", "sent"]]);
    await openers(bob.userId, [false, false, true]);

    expect(await insightsOf(alice.token)).toEqual({
      sessions: { total: 5, analysed: 4 },
      interest: {
        average: 62.8, // (80 + 71 + 40 + 60) / 4 = 62.75, to one decimal
        byWeek: [
          { weekStart: "2026-11-16", average: 75.5, sessions: 2 },
          { weekStart: "2026-11-23", average: 40, sessions: 1 },
          { weekStart: "2026-11-30", average: 60, sessions: 1 },
        ],
      },
      tones: [
        { tone: "playful", generated: 4, liked: 1, disliked: 0, copied: 1, sent: 1 },
        { tone: "witty", generated: 3, liked: 0, disliked: 1, copied: 1, sent: 0 },
      ],
      openers: { generated: 4, liked: 2, disliked: 1 },
      languages: [
        { language: "fr", sessions: 3 },
        { language: "en", sessions: 1 },
      ],
    });

    expect(await insightsOf(bob.token)).toEqual({
      sessions: { total: 1, analysed: 1 },
      interest: { average: 10, byWeek: [{ weekStart: "2026-11-16", average: 10, sessions: 1 }] },
      tones: [
        { tone: "witty", generated: 3, liked: 3, disliked: 0, copied: 0, sent: 0 },
        { tone: "sincere", generated: 1, liked: 0, disliked: 0, copied: 0, sent: 1 },
      ],
      openers: { generated: 3, liked: 1, disliked: 2 },
      languages: [{ language: "en", sessions: 1 }],
    });
  });

  it("keeps the latest 12 weeks that have an analysed session, oldest first", async () => {
    const { token, userId } = await signedInUser();
    // One session a week for 14 weeks from Monday 7 Sep 2026, and a gap of three weeks before the last.
    const mondays = Array.from({ length: 14 }, (_, week) => new Date(Date.UTC(2026, 8, 7 + 7 * (week < 13 ? week : week + 3))));
    for (const [week, monday] of mondays.entries()) {
      await session(userId, { interest: week, language: "en", analysedAt: new Date(monday.getTime() + 12 * 3_600_000) });
    }
    const { byWeek } = (await insightsOf(token)).interest;
    expect(byWeek.map((week) => week.weekStart)).toEqual(mondays.slice(2).map((monday) => monday.toISOString().slice(0, 10)));
    expect(byWeek.map((week) => week.average)).toEqual(Array.from({ length: 12 }, (_, index) => index + 2));
  });
});
