// Mints tokens shaped like Clerk session tokens (v2 claims), signed with a local RSA key.
// Runtime-agnostic (jose over WebCrypto): the token command and the Worker tests share it.
import { type JWK, SignJWT, importJWK } from "jose";

export const LOCAL_CLERK_ISSUER = "https://clerk.charisma.local";
export const LOCAL_AUTHORIZED_PARTY = "http://localhost:8081";
export const LOCAL_KEY_ID = "local-dev";

export interface MintOptions {
  /** Clerk user id, e.g. user_2abc… */
  sub: string;
  email?: string;
  /** Lifetime in seconds (Clerk's own tokens live about 60 s). */
  ttlSeconds?: number;
  /** Authorized party (the app's origin); defaults to the local one. */
  azp?: string;
  sessionId?: string;
  /** Shift "now", e.g. to mint an already expired token. */
  nowSeconds?: number;
  /** Claims set over Clerk's (`undefined` removes one): a token the Worker must refuse, say. */
  claims?: Record<string, unknown>;
  /** Header fields set over the default ones, e.g. another `kid`. */
  header?: Record<string, unknown>;
}

export async function mintSessionToken(privateJwk: JWK, options: MintOptions): Promise<string> {
  const key = await importJWK(privateJwk, "RS256");
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    azp: options.azp ?? LOCAL_AUTHORIZED_PARTY,
    sid: options.sessionId ?? `sess_${crypto.randomUUID().replaceAll("-", "")}`,
    v: 2,
    sts: "active",
    sub: options.sub,
    iss: LOCAL_CLERK_ISSUER,
    iat: now,
    nbf: now - 5,
    exp: now + (options.ttlSeconds ?? 3600),
    ...(options.email ? { email: options.email } : {}),
    ...options.claims,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: LOCAL_KEY_ID, typ: "JWT", ...options.header }).sign(key);
}
