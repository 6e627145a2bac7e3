import type { z } from "@hono/zod-openapi";
import { type SQL, sql, type SQLWrapper } from "drizzle-orm";
import { suggestionGenerations, suggestions } from "../../db/schema";
import type { generationSchema } from "./schemas";

/** A generation as Postgres builds it: its time is still a JSON string. */
export type GenerationJson = Omit<z.infer<typeof generationSchema>, "createdAt"> & { createdAt: string };

/**
 * The one "generations with their suggestions" query: a session's generations, newest first,
 * each with its suggestions in rank order, as a JSON array built by Postgres (`limit`: only the
 * newest few). An SQL expression rather than a statement, so that a session's detail carries its
 * latest generation in its single query; `sessionId` may be that query's column.
 */
export function generationsJson(sessionId: string | SQLWrapper, limit?: number): SQL<GenerationJson[]> {
  return sql<GenerationJson[]>`coalesce((
    select json_agg(json_build_object('id', g.id, 'status', g.status, 'tone', g.tone, 'count', g.count,
      'instructions', g.instructions, 'provider', g.provider, 'model', g.model, 'language', g.language, 'errorCode', g.error_code,
      'createdAt', g.created_at,
      'suggestions', coalesce((select json_agg(json_build_object('id', x.id, 'rank', x.rank, 'tone', x.tone,
        'text', x.text, 'feedback', x.feedback) order by x.rank) from ${suggestions} x where x.generation_id = g.id), '[]'::json))
      order by g.created_at desc, g.id desc)
    from (select * from ${suggestionGenerations} where session_id = ${sessionId}
      order by created_at desc, id desc ${limit === undefined ? sql`` : sql`limit ${limit}`}) g), '[]'::json)`;
}
