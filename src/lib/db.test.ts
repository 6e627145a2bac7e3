import { neon } from "@neondatabase/serverless";
import { eq, sql } from "drizzle-orm";
import { beforeEach, describe, expect, it } from "vitest";
import { resetDatabase, testConfig, testDb } from "../../test/helpers";
import { users } from "../db/schema";
import { createDatabase } from "./db";

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
