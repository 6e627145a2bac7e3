// What must never appear in a log line: message text, tokens, emails, image keys, signatures.
// Every message text the resilience suite sends carries CANARY, so a leaked text is found by it
// even where no pattern would know it as text.

/** A word every message text and profile in the suite contains. */
export const CANARY = "quokkamarmalade";

const PATTERNS: Array<[kind: string, pattern: RegExp]> = [
  ["message text", new RegExp(CANARY, "i")],
  // Clerk session tokens and QStash signatures are both JWTs.
  ["token or signature (JWT)", /eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}/],
  ["email", /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/],
  ["image key", /\bu\/[A-Za-z0-9_-]{3,}\/[A-Za-z0-9_-]{6,}\.(png|jpe?g|webp|heic)/],
  // A Clerk (Svix) webhook signature, an upload URL's signature, a ticket or bearer in a URL.
  ["webhook signature", /\bv1,[A-Za-z0-9+/]{20,}={0,2}/],
  ["signed URL", /[?&](sig|signature|ticket|token)=[A-Za-z0-9_%.-]{8,}/i],
  ["bearer", /bearer\s+[A-Za-z0-9._-]{12,}/i],
];

/** The kinds of secret a log line shows; empty when it shows none. */
export function leaksIn(line: string): string[] {
  return PATTERNS.filter(([, pattern]) => pattern.test(line)).map(([kind]) => kind);
}

/** The line with every secret in it replaced by its kind: safe to print, and says where the leak is. */
export function maskLeaks(line: string): string {
  return PATTERNS.reduce((masked, [kind, pattern]) => masked.replace(new RegExp(pattern.source, `${pattern.flags}g`), `<${kind}>`), line);
}
