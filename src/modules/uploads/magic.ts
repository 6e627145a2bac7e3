import type { ImageContentType } from "./schemas";

/** Bytes needed from the start of a file to recognise every accepted type. */
export const MAGIC_BYTES_NEEDED = 12;

const ascii = (bytes: Uint8Array, from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));

// HEIF brands that carry HEIC (HEVC) images, as phones write them.
const HEIC_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"]);

/** Whether a file starting with `head` is an image of `type`, by its signature, not its name. */
export function matchesImageType(type: ImageContentType, head: Uint8Array): boolean {
  if (head.length < MAGIC_BYTES_NEEDED) return false;
  switch (type) {
    case "image/png":
      return [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((byte, i) => head[i] === byte);
    case "image/jpeg":
      return head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff;
    case "image/webp":
      return ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 12) === "WEBP";
    case "image/heic":
      return ascii(head, 4, 8) === "ftyp" && HEIC_BRANDS.has(ascii(head, 8, 12));
  }
}
