import { toHex } from "./encoding";

/** Hex SHA-256 of a string, with WebCrypto (Workers and Node alike). */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}
