import { fromBase64Url, toBase64Url } from "../../lib/encoding";
import type { ImageContentType } from "./schemas";

/** What an upload URL allows: one PUT of one exact body to one key, by one user, until `expires`. */
export type UploadGrant = { key: string; contentType: ImageContentType; size: number; expires: number; userId: string };

const encoder = new TextEncoder();

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

// Newline-separated fields: none of them can contain a newline (the key and type are validated),
// so two different grants can never produce the same string to sign.
function stringToSign(grant: UploadGrant): Uint8Array {
  return encoder.encode(["PUT", grant.key, grant.contentType, grant.size, grant.expires, grant.userId].join("\n"));
}

export async function signUploadGrant(secret: string, grant: UploadGrant): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), stringToSign(grant));
  return toBase64Url(new Uint8Array(signature));
}

/** WebCrypto's HMAC verify compares in constant time, unlike comparing two strings. */
export async function verifyUploadGrant(secret: string, grant: UploadGrant, signature: string): Promise<boolean> {
  return crypto.subtle.verify("HMAC", await hmacKey(secret), fromBase64Url(signature), stringToSign(grant));
}
