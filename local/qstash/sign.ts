// The `Upstash-Signature` QStash puts on every delivery: an HS256 JWT over the destination URL
// and a hash of the raw body. The real `Receiver` from @upstash/qstash verifies these.
import { createHash, randomUUID } from "node:crypto";
import { SignJWT } from "jose";

/** Valid for five minutes from now, as QStash's own tokens are. */
export function signDelivery(signingKey: string, url: string, body: Buffer): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ body: createHash("sha256").update(body).digest("base64url") })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("Upstash")
    .setSubject(url)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    .setJti(`jwt_${randomUUID().replaceAll("-", "")}`)
    .sign(new TextEncoder().encode(signingKey));
}
