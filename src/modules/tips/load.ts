import { and, eq, notInArray, sql } from "drizzle-orm";
import { tips } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { TipSeed } from "./catalog";

/**
 * Upserts the tips by their stable id and deactivates those no longer in the files (rows stay:
 * past deliveries point at them). Running it twice changes nothing the second time.
 */
export async function loadTips(db: Database, seeds: ReadonlyArray<TipSeed>) {
  if (seeds.length === 0) throw new Error("no tips to load: refusing to deactivate every tip");
  const changed = await db
    .insert(tips)
    .values(seeds.map((seed) => ({ id: seed.id, text: seed.text, phase: seed.phase, active: true })))
    .onConflictDoUpdate({
      target: tips.id,
      set: { text: sql`excluded.text`, phase: sql`excluded.phase`, active: true, updatedAt: new Date() },
      // Only rows that differ are rewritten, so a second run reports (and touches) nothing.
      setWhere: sql`(${tips.text}, ${tips.phase}, ${tips.active}) is distinct from (excluded.text, excluded.phase, true)`,
    })
    .returning({ id: tips.id });
  const deactivated = await db
    .update(tips)
    .set({ active: false, updatedAt: new Date() })
    .where(and(eq(tips.active, true), notInArray(tips.id, seeds.map((seed) => seed.id))))
    .returning({ id: tips.id });
  return { total: seeds.length, written: changed.length, deactivated: deactivated.length };
}
