import { createRoute } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonBody, jsonBodyErrors, jsonResponse, type Router } from "../../../lib/openapi";
import { confirmOcrSchema, sessionDetailSchema, sessionIdParamsSchema } from "../schemas";
import { confirmOcr } from "../service";
import { depsOf } from "./deps";

const route = createRoute({
  method: "post",
  path: "/{id}/confirm-ocr",
  tags: ["sessions"],
  security: bearerSecurity,
  summary: "Accept the OCR result, optionally corrected; the session becomes ready",
  request: { params: sessionIdParamsSchema, body: { ...jsonBody(confirmOcrSchema), required: false } },
  responses: {
    200: jsonResponse(sessionDetailSchema, "The ready session"),
    ...errorResponses(...jsonBodyErrors, "SESSION_NOT_FOUND", "INVALID_SESSION_STATE", ...authErrors),
  },
});

export function registerConfirmOcr(router: Router) {
  router.openapi(route, async (c) => {
    const body = c.req.valid("json") ?? {};
    return ok(c, await confirmOcr(depsOf(c), c.var.user.id, c.req.valid("param").id, body));
  });
}
