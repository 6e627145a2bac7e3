import { type SQL, sql } from "drizzle-orm";
import { magicOpeners } from "../../db/schema";

export type OpenerInsightsJson = { generated: number; liked: number; disliked: number };

/**
 * The user's magic openers in numbers: how many there are and how many they liked or disliked
 * (`liked` null is no opinion), as one JSON value built by Postgres — an SQL expression, so the
 * caller's insights stay one query.
 */
export function openerInsightsJson(userId: string): SQL<OpenerInsightsJson> {
  return sql<OpenerInsightsJson>`(
    select json_build_object('generated', count(*), 'liked', count(*) filter (where ${magicOpeners.liked}),
      'disliked', count(*) filter (where not ${magicOpeners.liked}))
    from ${magicOpeners} where ${magicOpeners.userId} = ${userId})`;
}
