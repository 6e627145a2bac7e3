import { type SQL, sql } from "drizzle-orm";
import { suggestionGenerations, suggestions } from "../../db/schema";
import { liveSessionExists } from "../sessions/live";
import { DEFAULT_TONE } from "./schemas";

export type ToneInsightJson = { tone: string; generated: number; liked: number; disliked: number; copied: number; sent: number };

/**
 * The user's suggestions of their live sessions, per tone: how many were generated and what the
 * user did with them, most generated first, as a JSON array built by Postgres (an SQL expression,
 * so the caller's insights stay one query). A suggestion without a tone of its own has its
 * generation's, and one without either was written in the default tone (as the job does).
 */
export function toneInsightsJson(userId: string): SQL<ToneInsightJson[]> {
  const feedback = (value: string) => sql`count(*) filter (where ${suggestions.feedback} = ${value})`;
  return sql<ToneInsightJson[]>`coalesce((
    select json_agg(json_build_object('tone', tone, 'generated', generated, 'liked', liked, 'disliked', disliked,
      'copied', copied, 'sent', sent) order by generated desc, tone)
    from (
      select coalesce(${suggestions.tone}, ${suggestionGenerations.tone}, ${DEFAULT_TONE}) as tone, count(*) as generated,
        ${feedback("liked")} as liked, ${feedback("disliked")} as disliked, ${feedback("copied")} as copied, ${feedback("sent")} as sent
      from ${suggestions} join ${suggestionGenerations} on ${suggestionGenerations.id} = ${suggestions.generationId}
      where ${liveSessionExists({ sessionId: suggestions.sessionId, userId })}
      group by 1
    ) per_tone), '[]'::json)`;
}
