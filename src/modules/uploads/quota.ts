import { sql } from "drizzle-orm";
import { sessionImages } from "../../db/schema";
import type { Database } from "../../lib/db";
import type { AppConfig } from "../../lib/env";
import { AppError } from "../../lib/errors";
import { UNATTACHED_UPLOAD_HOURS } from "./retention";

type QuotaConfig = Pick<AppConfig, "UPLOAD_MAX_PENDING" | "UPLOAD_MAX_BYTES_PER_DAY">;
type Usage = { pending: string | number; bytes: string | number; pending_frees_at: string | null; bytes_frees_at: string | null };

const DAY_SECONDS = 24 * 3600;

/**
 * The caller's upload usage at `now`, in ONE statement over their rows of the last 24 hours
 * (every row is written when its URL is signed, with the signed size):
 * - a URL never used (nothing received) counts only until it expires;
 * - pending: no session yet, for the first hour (then the retention sweep removes it);
 * - bytes: everything signed in the last 24 hours that counts, deleted screenshots included.
 * With each, the instant enough of it frees up for one more upload of `size` bytes.
 */
async function usageOf(db: Database, config: QuotaConfig, userId: string, size: number, now: Date) {
  const at = sql`${now.toISOString()}::timestamptz`;
  const result = await db.execute<Usage>(sql`
    with mine as (
      select size_bytes, session_id is null as unattached, created_at,
        -- an unused URL stops counting when it expires
        case when uploaded_at is null and receiving_at is null then url_expires_at end as unused_until
      from ${sessionImages}
      where user_id = ${userId} and created_at > ${at} - interval '24 hours'
    ),
    counted as (
      select size_bytes,
        least(unused_until, created_at + interval '24 hours') as bytes_until,
        case when unattached then least(unused_until, created_at + ${sql.raw(`interval '${UNATTACHED_UPLOAD_HOURS} hours'`)}) end as pending_until
      from mine
      where coalesce(unused_until > ${at}, true)
    ),
    pending as (
      select pending_until, row_number() over (order by pending_until) as n from counted where pending_until > ${at}
    ),
    freeing as (
      select bytes_until, sum(size_bytes) over (order by bytes_until rows between unbounded preceding and current row) as freed from counted
    ),
    totals as (select (select count(*) from pending) as pending, (select coalesce(sum(size_bytes), 0) from counted) as bytes)
    select totals.pending, totals.bytes,
      (select pending_until from pending where n = totals.pending - ${config.UPLOAD_MAX_PENDING}::int + 1) as pending_frees_at,
      (select min(bytes_until) from freeing where totals.bytes - freed + ${size}::int <= ${config.UPLOAD_MAX_BYTES_PER_DAY}::bigint) as bytes_frees_at
    from totals`);
  const [row] = result.rows;
  return {
    pending: Number(row?.pending ?? 0),
    bytes: Number(row?.bytes ?? 0),
    pendingFreesAt: row?.pending_frees_at ? new Date(row.pending_frees_at) : null,
    bytesFreesAt: row?.bytes_frees_at ? new Date(row.bytes_frees_at) : null,
  };
}

/**
 * 429 UPLOAD_QUOTA_EXCEEDED when one more upload of `size` bytes would pass the pending cap or the
 * daily byte budget; `details.exceeded` names which, Retry-After says when enough frees up.
 */
export async function assertUploadQuota(db: Database, config: QuotaConfig, userId: string, size: number, now: Date) {
  const usage = await usageOf(db, config, userId, size, now);
  const exceeded: Array<"pending" | "daily_bytes"> = [];
  const waits: number[] = [];
  const secondsUntil = (instant: Date | null) => (instant ? Math.max(1, Math.ceil((instant.getTime() - now.getTime()) / 1000)) : DAY_SECONDS);
  if (usage.pending >= config.UPLOAD_MAX_PENDING) {
    exceeded.push("pending");
    waits.push(secondsUntil(usage.pendingFreesAt));
  }
  if (usage.bytes + size > config.UPLOAD_MAX_BYTES_PER_DAY) {
    exceeded.push("daily_bytes");
    // No instant frees enough only when this one upload is over the whole budget.
    waits.push(secondsUntil(usage.bytesFreesAt));
  }
  if (exceeded.length === 0) return;
  const retryAfterSeconds = Math.max(...waits);
  throw new AppError("UPLOAD_QUOTA_EXCEEDED", {
    details: {
      exceeded,
      pending: { count: usage.pending, max: config.UPLOAD_MAX_PENDING },
      dailyBytes: { used: usage.bytes, requested: size, max: config.UPLOAD_MAX_BYTES_PER_DAY },
      retryAfterSeconds,
    },
    retryAfterSeconds,
  });
}
