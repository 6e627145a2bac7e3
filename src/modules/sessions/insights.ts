import { type SQL, sql } from "drizzle-orm";
import { sessions } from "../../db/schema";
import { liveSession } from "./live";

/** How many weeks `interest.byWeek` goes back: the latest ones that have an analysed session. */
export const INSIGHT_WEEKS = 12;

/** The sessions' share of a user's insights, as Postgres builds it. */
export type SessionInsightsJson = {
  sessions: { total: number; analysed: number };
  interest: { average: number | null; byWeek: Array<{ weekStart: string; average: number | null; sessions: number }> };
  languages: Array<{ language: string; sessions: number }>;
};

/**
 * The user's live sessions in numbers, as one JSON value built by Postgres: how many, how many
 * analysed, the average interest overall and per ISO week of `analysed_at` (weeks start on
 * Monday, UTC, like the usage budget's days; the latest INSIGHT_WEEKS weeks with one, oldest
 * first) and the languages of the analysed ones, most sessions first. An SQL expression rather
 * than a statement, so the caller's insights stay one query.
 */
export function sessionInsightsJson(userId: string): SQL<SessionInsightsJson> {
  return sql<SessionInsightsJson>`(
    with mine as (
      select ${sessions.interest} as interest, ${sessions.language} as language, ${sessions.analysedAt} as analysed_at
      from ${sessions} where ${liveSession({ userId })}
    ),
    analysed as (select * from mine where analysed_at is not null),
    weeks as (
      select date_trunc('week', analysed_at at time zone 'UTC') as week_start,
        round(avg(interest), 1) as average, count(*) as sessions
      from analysed group by 1 order by 1 desc limit ${sql.raw(String(INSIGHT_WEEKS))}
    ),
    languages as (
      select language, count(*) as sessions from analysed where language is not null group by language
    )
    select json_build_object(
      'sessions', json_build_object('total', (select count(*) from mine), 'analysed', (select count(*) from analysed)),
      'interest', json_build_object(
        'average', (select round(avg(interest), 1) from analysed),
        'byWeek', coalesce((select json_agg(json_build_object('weekStart', to_char(week_start, 'YYYY-MM-DD'),
          'average', average, 'sessions', sessions) order by week_start) from weeks), '[]'::json)),
      'languages', coalesce((select json_agg(json_build_object('language', language, 'sessions', sessions)
        order by sessions desc, language) from languages), '[]'::json)))`;
}
