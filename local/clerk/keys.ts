// The local stack's stand-in for Clerk's signing key: an RSA key pair made once and kept under
// .data/clerk, so tokens minted by `npm run token` stay valid across restarts.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type JWK, exportJWK, exportSPKI, generateKeyPair } from "jose";

export interface LocalClerkKeys {
  /** PEM public key: what the Worker gets as CLERK_JWT_KEY. */
  publicPem: string;
  privateJwk: JWK;
}

export async function generateClerkKeys(): Promise<LocalClerkKeys> {
  const { publicKey, privateKey } = await generateKeyPair("RS256", { extractable: true });
  return { publicPem: await exportSPKI(publicKey), privateJwk: await exportJWK(privateKey) };
}

export async function ensureLocalClerkKeys(dir: string): Promise<LocalClerkKeys> {
  const publicPath = join(dir, "public.pem");
  const privatePath = join(dir, "private.jwk.json");
  if (existsSync(publicPath) && existsSync(privatePath)) {
    return { publicPem: readFileSync(publicPath, "utf8"), privateJwk: JSON.parse(readFileSync(privatePath, "utf8")) as JWK };
  }
  mkdirSync(dir, { recursive: true });
  const keys = await generateClerkKeys();
  writeFileSync(publicPath, keys.publicPem);
  writeFileSync(privatePath, JSON.stringify(keys.privateJwk), { mode: 0o600 });
  return keys;
}
