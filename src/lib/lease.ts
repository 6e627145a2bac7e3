import { eq, isNull, lt, or, type SQL, sql } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { Logger } from "./logger";

/**
 * Leases for job runs. A run holds its work item (a generation, a session being read) for
 * JOB_LEASE_SECONDS and renews the lease every third of that while it is alive. A redelivery
 * takes over only a lapsed lease, so a live run is never doubled and a dead one is never waited
 * for long; a lease that lapsed long ago is the sweep's to fail. Times are the database's own
 * (`now()`), so isolates with different clocks agree.
 */
export type LeaseColumns = { owner: PgColumn; expiresAt: PgColumn };

/** How many lease lengths a lapsed lease waits for a redelivery before the sweep fails its work. */
export const STALE_AFTER_LEASES = 10;

/**
 * Work the sweep should end: no lease, or one lapsed, and nothing done to the row, for
 * STALE_AFTER_LEASES lease lengths (a run that died, or a job that never started).
 */
export function staleRun(columns: { expiresAt: PgColumn; updatedAt: PgColumn }, leaseSeconds: number, at?: Date): SQL {
  const now = at === undefined ? sql`now()` : sql`${at.toISOString()}::timestamptz`;
  return sql`greatest(${columns.expiresAt}, ${columns.updatedAt}) < ${now} - make_interval(secs => ${leaseSeconds * STALE_AFTER_LEASES})`;
}

/** A new lease owner: one per delivery attempt. */
export const newLeaseOwner = (messageId: string) => `${messageId}:${crypto.randomUUID()}`;

/** The SET values that take (or renew) a lease for `owner`. */
export function takeLease(owner: string, seconds: number) {
  return { leaseOwner: owner, leaseExpiresAt: sql`now() + make_interval(secs => ${seconds})` };
}

/** The SET values that give a lease up at once, so the next delivery need not wait it out. */
export const releaseLease = () => ({ leaseExpiresAt: sql`now()` });

/** No live lease: none was ever taken, or it lapsed (more than `graceSeconds` ago). */
export function leaseLapsed(columns: LeaseColumns, graceSeconds = 0): SQL {
  return or(isNull(columns.expiresAt), lt(columns.expiresAt, sql`now() - make_interval(secs => ${graceSeconds})`))!;
}

/** Still this run's: nobody took it over (a lapsed lease nobody took is still ours to renew). */
export function leaseHeldBy(columns: LeaseColumns, owner: string): SQL {
  return eq(columns.owner, owner);
}

/**
 * Holds a lease for as long as a run lives: renews it every third of its length and, once
 * another run took it, aborts `abort` with LeaseLost (see `lost`). A renewal that fails (a
 * database hiccup) is logged and tried again. `stop` ends the heartbeat and waits for a renewal
 * in flight, so a lease given up afterwards is not taken again by a late renewal.
 */
export function holdLease(options: { seconds: number; renew(): Promise<boolean>; logger: Logger }) {
  const abort = new AbortController();
  let inFlight: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    inFlight = options.renew().then(
      (held) => held || abort.abort(new LeaseLost()),
      (error: unknown) => options.logger.warn("lease renewal failed", { error }),
    );
  }, (options.seconds * 1000) / 3);
  return {
    abort,
    lost: () => abort.signal.reason instanceof LeaseLost,
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

/** Why a run stopped when its lease was taken: not the user's cancel, not a failure. */
class LeaseLost extends Error {
  constructor() {
    super("the run's lease was taken by another delivery");
    this.name = "LeaseLost";
  }
}
