import { z } from "@hono/zod-openapi";

export const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

export const imageContentTypes = ["image/png", "image/jpeg", "image/webp", "image/heic"] as const;
export const imageContentTypeSchema = z.enum(imageContentTypes);
export type ImageContentType = z.infer<typeof imageContentTypeSchema>;

export const uploadUrlQuerySchema = z.object({
  contentType: imageContentTypeSchema.openapi({ param: { name: "contentType", in: "query" }, example: "image/png" }),
  size: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_UPLOAD_BYTES)
    .openapi({ param: { name: "size", in: "query" }, example: 482113, description: "Exact byte length of the image" }),
});

export const uploadUrlSchema = z
  .object({
    uploadUrl: z.url(),
    method: z.literal("PUT"),
    headers: z.record(z.string(), z.string()),
    key: z.string(),
    expiresAt: z.iso.datetime(),
  })
  .openapi("UploadUrl");

/** The signed query of an upload URL. Every field is covered by the signature. */
export const signedUploadQuerySchema = z.object({
  type: imageContentTypeSchema,
  size: z.coerce.number().int().min(1).max(MAX_UPLOAD_BYTES),
  expires: z.coerce.number().int().positive(),
  sig: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});

export const uploadKeyParamsSchema = z.object({
  key: z.string().openapi({ param: { name: "key", in: "path" }, example: "u/ckx…/Yq3…Q.png" }),
});

export const uploadedImageSchema = z
  .object({ key: z.string(), contentType: imageContentTypeSchema, size: z.number().int(), sha256: z.string() })
  .openapi("UploadedImage");
