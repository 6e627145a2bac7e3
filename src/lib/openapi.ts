import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "./app-env";
import { AppError, type ErrorCode, errorCatalog, type HttpErrorCode, whereShown } from "./errors";
import { unstorableTextIssues } from "./input";

/**
 * Every router is an OpenAPIHono: its zod schemas validate requests and document the API. What
 * they accept must also be text Postgres can store, whichever field it is in (see input.ts).
 */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      const issues = result.success ? unstorableTextIssues(result.data) : result.error.issues.map(({ path, message, code }) => ({ path, message, code }));
      if (issues.length > 0) throw new AppError("VALIDATION_ERROR", { details: { target: result.target, issues } });
    },
  });
}

export type Router = ReturnType<typeof createRouter>;

export const successEnvelope = <T extends z.ZodType>(data: T) =>
  z.object({ success: z.literal(true), data });

export const errorEnvelopeSchema = z
  .object({
    success: z.literal(false),
    error: z.object({
      code: z.enum(Object.keys(errorCatalog) as [HttpErrorCode, ...HttpErrorCode[]]),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("ErrorEnvelope");

/** `{ 200: …, 404: … }`-style response entries for the documented error statuses of a route. */
export function errorResponses(...codes: HttpErrorCode[]) {
  const byStatus = new Map<number, HttpErrorCode[]>();
  for (const code of codes) {
    const status = errorCatalog[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      { description: list.join(" | "), content: { "application/json": { schema: errorEnvelopeSchema } } },
    ]),
  );
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema: successEnvelope(schema) } } };
}

export function jsonBody<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}

/** A route that takes a Clerk session token (the `bearerAuth` scheme is registered in app.ts). */
export const bearerSecurity = [{ bearerAuth: [] }];

/** Errors any route with a JSON body can answer about that body. */
export const jsonBodyErrors = ["VALIDATION_ERROR", "INVALID_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"] as const;

/** Errors any authenticated route can answer, beyond its own. */
export const authErrors = ["UNAUTHORIZED", "TOKEN_EXPIRED", "ACCOUNT_DELETED", "RATE_LIMITED", "INTERNAL_ERROR", "DATABASE_UNAVAILABLE"] as const;

/**
 * Every code of the catalog, HTTP or not, with where it shows and what it means: the
 * `ErrorCode` component of the API document.
 */
export function errorCodeComponent() {
  return {
    type: "string" as const,
    description: "Every error code a client or an operator can see (src/lib/errors.ts).",
    oneOf: (Object.keys(errorCatalog) as ErrorCode[]).map((code) => ({
      const: code,
      description: `${whereShown(code).join(", ")}: ${errorCatalog[code].doc}`,
    })),
  };
}
