const LETTERS = "abcdefghijklmnopqrstuvwxyz";
const ALPHABET = `${LETTERS}0123456789`;
const ID_LENGTH = 24;

/**
 * A new id for a row, a room or a generation: 24 characters, a lower-case letter then lower-case
 * letters and digits (about 124 random bits), the shape of a CUID2 that the API's id patterns
 * and its clients expect. The bytes come from the runtime's CSPRNG; a byte that would favour the
 * first letters of the alphabet (modulo bias) is drawn again.
 *
 * Not `@paralleldrive/cuid2`: it hashes with SHA-3 and converts through bignumber.js, 242 µs an
 * id in V8 against 4 µs here, paid once per message of a new session; and it put 13 KiB (gzip)
 * into the bundle. Its reasons to hash (hiding a weak random source, host fingerprints) do not
 * apply to a runtime whose `crypto.getRandomValues` is a CSPRNG.
 */
export function newId(): string {
  let id = "";
  while (id.length < ID_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(ID_LENGTH * 2))) {
      const pool = id.length === 0 ? LETTERS : ALPHABET;
      // The largest multiple of the pool's size that fits in a byte: above it, `%` would be biased.
      if (byte >= 256 - (256 % pool.length)) continue;
      id += pool[byte % pool.length];
      if (id.length === ID_LENGTH) break;
    }
  }
  return id;
}
