import { verifyToken } from "@clerk/backend";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppEnv, UserIdentity } from "./app-env";
import { fromBase64Url } from "./encoding";
import type { AppConfig } from "./env";
import { AppError } from "./errors";
import { storableString } from "./input";

/**
 * The claims the app reads. Clerk's user ids are short (`user_…`), an email at most 320
 * characters; anything else, or text Postgres cannot store, is not a token we accept. A
 * malformed `sid` or `email` is ignored, as Clerk may leave either out.
 */
const sessionClaimsSchema = z.object({
  sub: storableString().min(1).max(255),
  sid: storableString().max(255).optional().catch(undefined),
  email: storableString().max(320).optional().catch(undefined),
  exp: z.number(),
  iat: z.number().optional().catch(undefined),
});

/** Tolerated clock difference between Clerk and this Worker when checking exp/nbf/iat. */
const CLOCK_SKEW_MS = 5_000;

export type VerifiedSession = {
  clerkUserId: string;
  sessionId: string | undefined;
  email: string | undefined;
  /** When Clerk issued the token (`iat`, ms since the epoch): only a token newer than an account's deletion restores it. */
  issuedAt: number | undefined;
  /** When the token expires (`exp`, ms since the epoch): a socket opened with it lives until then unless refreshed. */
  expiresAt: number;
};

// A phone reuses one session token for every request of its ~60 s life: the answer for a token
// is kept (per isolate) until the token expires, so its signature is checked once, not per call.
const VERIFIED_CACHE_MAX = 5_000;
const verified = new Map<string, { session: VerifiedSession; expiresAt: number }>();

function remember(token: string, session: VerifiedSession, expiresAt: number): void {
  if (verified.size >= VERIFIED_CACHE_MAX) verified.delete(verified.keys().next().value!);
  verified.set(token, { session, expiresAt });
}

/** The `kid` a JWT's header names, if it is readable. */
function keyIdOf(token: string): unknown {
  try {
    return (JSON.parse(new TextDecoder().decode(fromBase64Url(token.split(".")[0]!))) as { kid?: unknown }).kid;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a Clerk session JWT: networkless with the PEM key when set, else via the secret key's
 * JWKS. With CLERK_JWT_KEY_ID and CLERK_ISSUER set, a token must also name that key and issuer:
 * the PEM key alone would take any `kid` and `iss` signed with it.
 */
export async function verifySessionToken(token: string, config: AppConfig): Promise<VerifiedSession> {
  const known = verified.get(token);
  if (known && known.expiresAt > Date.now()) return known.session;
  if (!config.CLERK_JWT_KEY && !config.CLERK_SECRET_KEY) {
    throw new AppError("CONFIG_INVALID", { message: "Authentication is not configured" });
  }
  if (config.CLERK_JWT_KEY_ID && keyIdOf(token) !== config.CLERK_JWT_KEY_ID) throw new AppError("UNAUTHORIZED", { message: "Invalid session token" });
  // The exported verifyToken throws a TokenVerificationError (with a `reason`) on any failure.
  let payload: unknown;
  try {
    payload = await verifyToken(token, {
      ...(config.CLERK_JWT_KEY ? { jwtKey: config.CLERK_JWT_KEY } : { secretKey: config.CLERK_SECRET_KEY }),
      authorizedParties: config.CLERK_AUTHORIZED_PARTIES.length > 0 ? config.CLERK_AUTHORIZED_PARTIES : undefined,
      issuer: config.CLERK_ISSUER.length > 0 ? config.CLERK_ISSUER : undefined,
      clockSkewInMs: CLOCK_SKEW_MS,
    });
  } catch (error) {
    if ((error as { reason?: string }).reason === "token-expired") throw new AppError("TOKEN_EXPIRED");
    throw new AppError("UNAUTHORIZED", { message: "Invalid session token" });
  }
  // verifyToken refuses a token without `exp`; the check keeps a malformed one from living forever.
  // A signed token is still input: an id or email no row can hold makes the token invalid, not a 500.
  const claims = sessionClaimsSchema.safeParse(payload);
  if (!claims.success) throw new AppError("UNAUTHORIZED", { message: "Invalid session token" });
  const { sub, sid, email, exp, iat } = claims.data;
  const session = {
    clerkUserId: sub,
    sessionId: sid,
    email,
    issuedAt: iat === undefined ? undefined : iat * 1000,
    expiresAt: exp * 1000,
  };
  remember(token, session, session.expiresAt);
  return session;
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/**
 * Authenticates the request and loads (or provisions) the internal user. `resolveUser` comes
 * from the users module, so this infrastructure never reaches into a feature's tables.
 */
export function requireAuth(resolveUser: (c: Parameters<MiddlewareHandler<AppEnv>>[0], session: VerifiedSession) => Promise<UserIdentity>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header("Authorization"));
    if (!token) throw new AppError("UNAUTHORIZED", { message: "Missing bearer token" });
    const session = await verifySessionToken(token, c.var.config);
    const user = await resolveUser(c, session);
    c.set("auth", { clerkUserId: session.clerkUserId, sessionId: session.sessionId, expiresAt: session.expiresAt });
    c.set("user", user);
    c.set("logger", c.var.logger.child({ userId: user.id }));
    await next();
  };
}
