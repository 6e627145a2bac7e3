import type { z } from "@hono/zod-openapi";
import { and, asc, eq, inArray, sql, type SQL } from "drizzle-orm";
import { messages, sessions } from "../../db/schema";
import type { Database } from "../../lib/db";
import { AppError } from "../../lib/errors";
import { newId } from "../../lib/ids";
import { EDITABLE_STATUSES, explainRefusal, sessionIn } from "./lifecycle";
import { liveSession } from "./live";
import { type addMessageSchema, MAX_MESSAGES, type messageInputSchema, type updateMessageSchema } from "./schemas";

type MessageInput = z.infer<typeof messageInputSchema>;
type MessageRow = typeof messages.$inferSelect;
type Owner = { sessionId: string; userId: string };

/**
 * Inserts a conversation at positions 0..n-1, only if `guard` holds when the statement runs
 * (so it can sit in a batch after a status check). Batchable.
 */
export function insertMessagesStatement(
  db: Database,
  sessionId: string,
  list: MessageInput[],
  source: "ocr" | "manual",
  guard: SQL = sql`true`,
  ocrConfidences: number[] = [],
) {
  const rows = list.map((message, position) => ({
    id: newId(),
    sender: message.sender,
    text: message.text,
    position,
    sent_at: message.sentAt ?? null,
    ocr_confidence: ocrConfidences[position] ?? null,
  }));
  return db.execute(sql`
    insert into ${messages} (id, session_id, sender, text, position, source, sent_at, ocr_confidence)
    select x.id, ${sessionId}, x.sender::message_sender, x.text, x.position, ${source}::message_source, x.sent_at, x.ocr_confidence
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as x(id text, sender text, text text, position int, sent_at timestamptz, ocr_confidence real)
    where ${guard}`);
}

// Every edit runs as one batch (one transaction) that first locks the session row, so edits of
// one conversation are serialised and positions stay dense (0..n-1) whatever the interleaving.
function lockEditable(db: Database, owner: Owner) {
  return db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(liveSession(owner), inArray(sessions.status, [...EDITABLE_STATUSES])))
    .for("update");
}

const countOf = (sessionId: string) => sql<number>`(select count(*)::int from ${messages} c where c.session_id = ${sessionId})`;

/** How many messages the caller's live session holds; 404 SESSION_NOT_FOUND when there is no such session. */
export async function conversationLength(db: Database, owner: Owner): Promise<number> {
  const [row] = await db.select({ count: countOf(owner.sessionId) }).from(sessions).where(liveSession(owner));
  if (!row) throw new AppError("SESSION_NOT_FOUND");
  return row.count;
}

/**
 * For the suggestion job: the session's owner and its conversation in order — or undefined once
 * the session is no longer `generating` (gone, or moved on by another run). One transaction.
 */
export async function conversationToGenerate(db: Database, sessionId: string) {
  const [[session], conversation] = await db.batch([
    db.select({ userId: sessions.userId, status: sessions.status }).from(sessions).where(eq(sessions.id, sessionId)),
    db.select({ sender: messages.sender, text: messages.text }).from(messages).where(eq(messages.sessionId, sessionId)).orderBy(asc(messages.position)),
  ]);
  if (!session || session.status !== "generating") return undefined;
  return { userId: session.userId, conversation };
}

function toMessage(row: MessageRow) {
  return {
    id: row.id,
    sender: row.sender,
    text: row.text,
    position: row.position,
    source: row.source,
    ocrConfidence: row.ocrConfidence,
    sentAt: row.sentAt?.toISOString() ?? null,
  };
}

/** Inserts one message at `position` (the end by default), shifting the later ones down. */
export async function addMessage(db: Database, owner: Owner, input: z.infer<typeof addMessageSchema>) {
  const editable = sessionIn(owner, EDITABLE_STATUSES);
  const room = sql`${countOf(owner.sessionId)} < ${MAX_MESSAGES}`;
  const at = sql`least(${input.position ?? MAX_MESSAGES}, ${countOf(owner.sessionId)})`;
  const [locked, , inserted] = await db.batch([
    lockEditable(db, owner),
    db
      .update(messages)
      .set({ position: sql`${messages.position} + 1` })
      .where(and(eq(messages.sessionId, owner.sessionId), sql`${messages.position} >= ${at}`, editable, room)),
    db.execute<MessageRow>(sql`
      insert into ${messages} (id, session_id, sender, text, position, source, sent_at)
      select ${newId()}, ${owner.sessionId}, ${input.sender}::message_sender, ${input.text}, ${at}, 'manual', ${input.sentAt ?? null}::timestamptz
      where ${editable} and ${room}
      returning id, sender, text, position, source, ocr_confidence as "ocrConfidence", sent_at as "sentAt"`),
  ]);
  if (locked.length === 0) return explainRefusal(db, owner, "be edited");
  const [row] = inserted.rows;
  if (!row) throw new AppError("CONVERSATION_TOO_LONG");
  return toMessage({ ...row, sentAt: row.sentAt ? new Date(row.sentAt) : null });
}

/** Edits a message; a new `position` moves it, sliding the messages in between by one. */
export async function updateMessage(db: Database, owner: Owner, messageId: string, patch: z.infer<typeof updateMessageSchema>) {
  const editable = sessionIn(owner, EDITABLE_STATUSES);
  const ofMessage = and(eq(messages.id, messageId), eq(messages.sessionId, owner.sessionId), editable);
  const statements = [lockEditable(db, owner)] as const;
  const move =
    patch.position === undefined
      ? []
      : [
          db.execute(sql`
            update ${messages} m set position = case
              when m.id = t.id then t.target
              when t.target > t.current and m.position > t.current and m.position <= t.target then m.position - 1
              when t.target < t.current and m.position >= t.target and m.position < t.current then m.position + 1
              else m.position end
            from (select cur.id, cur.position as current, least(${patch.position}, ${countOf(owner.sessionId)} - 1) as target
                  from ${messages} cur where cur.id = ${messageId} and cur.session_id = ${owner.sessionId}) t
            where m.session_id = ${owner.sessionId} and ${editable}`),
        ];
  const { position: _position, ...fields } = patch;
  const update = db
    .update(messages)
    .set({ ...fields, sentAt: fields.sentAt === undefined ? undefined : fields.sentAt === null ? null : new Date(fields.sentAt), updatedAt: new Date() })
    .where(ofMessage)
    .returning();
  const results = (await db.batch([...statements, ...move, update] as never)) as unknown[];
  if ((results[0] as unknown[]).length === 0) return explainRefusal(db, owner, "be edited");
  const [row] = results.at(-1) as MessageRow[];
  if (!row) throw new AppError("MESSAGE_NOT_FOUND");
  return toMessage(row);
}

/** Deletes a message and closes the gap it leaves. */
export async function deleteMessage(db: Database, owner: Owner, messageId: string): Promise<void> {
  const editable = sessionIn(owner, EDITABLE_STATUSES);
  const [locked, deleted] = await db.batch([
    lockEditable(db, owner),
    db.execute<{ deleted: number }>(sql`
      with gone as (
        delete from ${messages} where id = ${messageId} and session_id = ${owner.sessionId} and ${editable} returning position
      ), shifted as (
        update ${messages} set position = position - 1
        where session_id = ${owner.sessionId} and position > (select position from gone)
        returning 1
      )
      select (select count(*)::int from gone) as deleted`),
  ]);
  if (locked.length === 0) return explainRefusal(db, owner, "be edited");
  if (deleted.rows[0]?.deleted !== 1) throw new AppError("MESSAGE_NOT_FOUND");
}
