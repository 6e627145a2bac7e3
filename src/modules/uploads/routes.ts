import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../../lib/app-env";
import { ok } from "../../lib/envelope";
import { AppError } from "../../lib/errors";
import { authErrors, bearerSecurity, createRouter, errorResponses, jsonResponse } from "../../lib/openapi";
import {
  MAX_UPLOAD_BYTES,
  signedUploadQuerySchema,
  uploadedImageSchema,
  uploadKeyParamsSchema,
  uploadUrlQuerySchema,
  uploadUrlSchema,
} from "./schemas";
import { issueUploadUrl, receiveUpload } from "./service";

const uploadUrlRoute = createRoute({
  method: "get",
  path: "/sessions/upload-url",
  tags: ["uploads"],
  security: bearerSecurity,
  summary: "A short-lived signed URL for uploading one screenshot",
  description:
    "Within the caller's upload quota: at most UPLOAD_MAX_PENDING uploads not yet in a session (each counts for its first hour; an unused URL until it expires) and UPLOAD_MAX_BYTES_PER_DAY bytes signed in the last 24 hours; past either, 429 UPLOAD_QUOTA_EXCEEDED with Retry-After.",
  request: { query: uploadUrlQuerySchema },
  responses: {
    200: jsonResponse(uploadUrlSchema, "PUT the image to `uploadUrl` with `headers` and its exact length"),
    ...errorResponses("VALIDATION_ERROR", "UPLOAD_QUOTA_EXCEEDED", "CONFIG_INVALID", ...authErrors),
  },
});

const putUploadRoute = createRoute({
  method: "put",
  path: "/uploads/{key}",
  tags: ["uploads"],
  summary: `Receive one image (≤ ${MAX_UPLOAD_BYTES} bytes) for a signed upload URL; no bearer token`,
  description: "The query string is the one `GET /sessions/upload-url` returned, unchanged.",
  request: {
    params: uploadKeyParamsSchema,
    body: { required: true, content: { "image/png": { schema: {} }, "image/jpeg": { schema: {} }, "image/webp": { schema: {} }, "image/heic": { schema: {} } } },
  },
  responses: {
    201: jsonResponse(uploadedImageSchema, "Stored"),
    ...errorResponses(
      "UPLOAD_LENGTH_MISMATCH",
      "UPLOAD_URL_INVALID",
      "UPLOAD_ALREADY_EXISTS",
      "LENGTH_REQUIRED",
      "PAYLOAD_TOO_LARGE",
      "UNSUPPORTED_MEDIA_TYPE",
      "INVALID_IMAGE",
      "INTERNAL_ERROR",
      "DATABASE_UNAVAILABLE",
    ),
  },
});

/**
 * Screenshot uploads. The URL is handed out to an authenticated user; the upload itself is
 * authorised by the URL's signature alone, so that no bearer token travels with the image.
 */
export function createUploadsRoutes(guards: { authenticated: MiddlewareHandler<AppEnv>[]; signed: MiddlewareHandler<AppEnv>[] }) {
  const router = createRouter();
  router.use("/sessions/upload-url", ...guards.authenticated);
  router.use("/uploads/*", ...guards.signed);

  router.openapi(uploadUrlRoute, async (c) => ok(c, await issueUploadUrl({ config: c.var.config, db: c.var.db }, c.var.user.id, c.req.valid("query"))));

  // The key holds slashes and the body is raw bytes, so this route is plain Hono (capturing the
  // rest of the path) and only its documentation goes through the OpenAPI registry.
  router.openAPIRegistry.registerPath(putUploadRoute);
  router.put("/uploads/:key{.+}", async (c) => {
    // A refusal leaves the rest of the body to the app's drainUnreadBody, so the connection stays usable.
    const query = signedUploadQuerySchema.safeParse(c.req.query());
    if (!query.success) throw new AppError("UPLOAD_URL_INVALID");
    const stored = await receiveUpload(
      { config: c.var.config, db: c.var.db, bucket: c.env.IMAGES },
      c.req.param("key"),
      query.data,
      { contentType: c.req.header("Content-Type"), contentLength: c.req.header("Content-Length"), body: c.req.raw.body },
    );
    return ok(c, stored, 201);
  });

  return router;
}
