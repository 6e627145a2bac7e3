import { NeonDbError, neon } from "@neondatabase/serverless";
import { eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { dropNextDatabaseRequests, droppingDb, resetDatabase, testConfig, testDb } from "../../test/helpers";
import { users } from "../db/schema";
import { createDatabase, unreachableDatabaseError } from "./db";

const failureOf = (work: Promise<unknown>) => work.then(() => undefined, (error: unknown) => error);

describe("Neon HTTP driver against the local endpoint", () => {
  beforeEach(resetDatabase);

  it("honours transaction options: a read-only transaction refuses writes and leaves nothing", async () => {
    testDb(); // points the driver at the local endpoint
    const client = neon(testConfig().DATABASE_URL);
    const failure = await client
      .transaction([client`select 1`, client`insert into users (id, clerk_id) values ('u1', 'c1')`], {
        isolationLevel: "Serializable",
        readOnly: true,
      })
      .then(() => undefined, (error: unknown) => error as { code?: string });
    expect(failure?.code).toBe("25006");
    const [written] = await client.transaction([client`insert into users (id, clerk_id) values ('u2', 'c2') returning id`], {
      isolationLevel: "RepeatableRead",
    });
    expect(written).toEqual([{ id: "u2" }]);
    expect(await client`select clerk_id from users order by clerk_id`).toEqual([{ clerk_id: "c2" }]);
  });

  it("keeps each database host on its own endpoint, whichever handle was created last", async () => {
    const healthy = testDb();
    const broken = createDatabase({
      DATABASE_URL: "postgresql://postgres:postgres@127.0.0.2:5999/postgres",
      NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql",
    });
    await expect(broken.execute(sql`select 1`)).rejects.toThrow();
    expect((await healthy.execute(sql`select 1 as one`)).rows).toEqual([{ one: 1 }]);
  });

  it("passes Postgres error details through drizzle to the caller, and the session stays usable", async () => {
    const db = testDb();
    const failure = await db
      .execute(sql`select * from no_such_table`)
      .then(() => undefined, (error: unknown) => error as { cause?: { code?: string; message?: string } });
    expect(failure?.cause?.code).toBe("42P01");
    expect(failure?.cause?.message).toMatch(/no_such_table/);
    // A single BEGIN must not leave the shared session inside a transaction for the next request.
    await db.execute(sql`begin`);
    await db.insert(users).values({ clerkId: "after_begin" });
    const rows = await db.select({ clerkId: users.clerkId }).from(users).where(eq(users.clerkId, "after_begin"));
    expect(rows).toHaveLength(1);
  });
});

describe("a request that does not reach the database", () => {
  beforeEach(resetDatabase);

  it("is retried once when it only reads: one lost request costs nothing, two fail", async () => {
    const db = droppingDb();
    await db.insert(users).values({ clerkId: "reader" });
    const readers = () => db.select({ clerkId: users.clerkId }).from(users);

    await dropNextDatabaseRequests(1);
    expect(await readers()).toEqual([{ clerkId: "reader" }]);
    // A batch of SELECTs is a read too.
    await dropNextDatabaseRequests(1);
    expect(await db.batch([readers(), db.select({ n: sql<number>`1` }).from(users)])).toEqual([[{ clerkId: "reader" }], [{ n: 1 }]]);

    await dropNextDatabaseRequests(2);
    const failure = await failureOf(readers());
    expect(unreachableDatabaseError(failure)?.message).toMatch(/^Error connecting to database: /);
    // Both drops were spent (first attempt and retry), and no third attempt was made.
    expect(await readers()).toEqual([{ clerkId: "reader" }]);
  });

  it("is not retried when it writes: the write fails as unreachable and nothing is written", async () => {
    const db = droppingDb();
    await dropNextDatabaseRequests(1);
    expect(unreachableDatabaseError(await failureOf(db.insert(users).values({ clerkId: "lost" })))).toBeDefined();
    // db.batch rejects with the driver's error itself, not wrapped by drizzle.
    await dropNextDatabaseRequests(1);
    const batchFailure = await failureOf(db.batch([db.insert(users).values({ clerkId: "lost-too" }), db.select().from(users)]));
    expect(batchFailure).toBeInstanceOf(NeonDbError);
    expect(unreachableDatabaseError(batchFailure)).toBe(batchFailure);
    expect(await db.select({ clerkId: users.clerkId }).from(users)).toEqual([]);
  });

  it("tells an unreachable database from a statement Postgres refused", async () => {
    const closed = createDatabase({ DATABASE_URL: "postgresql://postgres:postgres@127.0.0.2:5999/postgres", NEON_HTTP_ENDPOINT: "http://127.0.0.1:9/sql" });
    expect(unreachableDatabaseError(await failureOf(closed.execute(sql`select 1`)))?.message).toMatch(/^Error connecting to database: /);
    // An endpoint answering neither 2xx nor 400: the driver's "Server error".
    const wrongPath = createDatabase({
      DATABASE_URL: "postgresql://postgres:postgres@127.0.0.4:5432/postgres",
      NEON_HTTP_ENDPOINT: testConfig().NEON_HTTP_ENDPOINT!.replace(/\/sql$/, "/nowhere"),
    });
    expect(unreachableDatabaseError(await failureOf(wrongPath.execute(sql`select 1`)))?.message).toMatch(/^Server error \(HTTP status 404\)/);

    const db = testDb();
    const missingTable = await failureOf(db.execute(sql`select * from no_such_table`));
    expect((missingTable as { cause?: { code?: string } }).cause?.code).toBe("42P01");
    expect(unreachableDatabaseError(missingTable)).toBeUndefined();
    await db.insert(users).values({ clerkId: "taken" });
    const duplicate = await failureOf(db.insert(users).values({ clerkId: "taken" }));
    expect((duplicate as { cause?: { code?: string } }).cause?.code).toBe("23505");
    expect(unreachableDatabaseError(duplicate)).toBeUndefined();
    expect(unreachableDatabaseError(new Error("Error connecting to database: not from the driver"))).toBeUndefined();
  });
});
