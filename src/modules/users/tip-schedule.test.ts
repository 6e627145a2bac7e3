import { beforeEach, describe, expect, it } from "vitest";
import { clerkId, resetDatabase, testDb } from "../../../test/helpers";
import { users } from "../../db/schema";
import { usersDueForTip } from "./service";

async function user(timezone: string, extra: Partial<typeof users.$inferInsert> = {}) {
  const [row] = await testDb().insert(users).values({ clerkId: clerkId(), timezone, ...extra }).returning({ id: users.id });
  return row!.id;
}

const due = async (iso: string) => (await usersDueForTip(testDb(), new Date(iso), { limit: 100 })).map(({ id, localDate }) => ({ id, localDate }));

describe("whose daily tip is due", () => {
  beforeEach(resetDatabase);

  it("is due at 09:00 local time at the UTC+14 and UTC−12 edges, on their own local dates", async () => {
    const kiritimati = await user("Pacific/Kiritimati"); // UTC+14
    const bakerIsland = await user("Etc/GMT+12"); // UTC−12 (POSIX signs are inverted)
    // 19:00 UTC on the 28th is 09:00 on the 29th in Kiritimati.
    expect(await due("2026-11-28T19:00:00Z")).toEqual([{ id: kiritimati, localDate: "2026-11-29" }]);
    // 21:00 UTC on the 29th is 09:00 on the 29th at UTC−12: the same local date, 26 hours later.
    expect(await due("2026-11-29T21:00:00Z")).toEqual([{ id: bakerIsland, localDate: "2026-11-29" }]);
    expect(await due("2026-11-29T20:59:59Z")).toEqual([]);
  });

  it("follows daylight saving: 09:00 in New York is 14:00 UTC the day before the change and 13:00 UTC on it", async () => {
    const newYork = await user("America/New_York");
    expect(await due("2026-03-07T14:30:00Z")).toEqual([{ id: newYork, localDate: "2026-03-07" }]);
    expect(await due("2026-03-08T13:30:00Z")).toEqual([{ id: newYork, localDate: "2026-03-08" }]);
    expect(await due("2026-03-08T14:30:00Z")).toEqual([]);
  });

  it("skips users who turned tips off or were deleted, and honours a chosen hour", async () => {
    await user("UTC", { dailyTipsEnabled: false });
    await user("UTC", { deletedAt: new Date(), deletedBy: "user" });
    const early = await user("UTC", { preferences: { tipHour: 7 } });
    const standard = await user("UTC");
    expect(await due("2026-11-29T07:10:00Z")).toEqual([{ id: early, localDate: "2026-11-29" }]);
    expect(await due("2026-11-29T09:10:00Z")).toEqual([{ id: standard, localDate: "2026-11-29" }]);
  });

  it("pages in id order, so a fan-out works in bounded batches", async () => {
    const ids = (await Promise.all(Array.from({ length: 5 }, () => user("UTC")))).sort();
    const first = await usersDueForTip(testDb(), new Date("2026-11-29T09:00:00Z"), { limit: 2 });
    const second = await usersDueForTip(testDb(), new Date("2026-11-29T09:00:00Z"), { limit: 2, afterId: first.at(-1)!.id });
    const third = await usersDueForTip(testDb(), new Date("2026-11-29T09:00:00Z"), { limit: 2, afterId: second.at(-1)!.id });
    expect([...first, ...second, ...third].map((row) => row.id)).toEqual(ids);
  });
});
