import { createRoute, z } from "@hono/zod-openapi";
import { ok } from "../../../lib/envelope";
import { authErrors, bearerSecurity, errorResponses, jsonResponse, type Router } from "../../../lib/openapi";
import { usageToday } from "../service";

const usageSchema = z
  .object({
    date: z.string().openapi({ description: "UTC calendar day the budget applies to", example: "2026-11-23" }),
    calls: z.number().int(),
    costUsd: z.number(),
    budgetUsd: z.number(),
    remainingUsd: z.number(),
    byKind: z.record(z.string(), z.object({ calls: z.number().int(), costUsd: z.number() })),
  })
  .openapi("Usage");

const route = createRoute({
  method: "get",
  path: "/me/usage",
  tags: ["users"],
  security: bearerSecurity,
  summary: "Today's AI calls, cost and remaining budget",
  responses: { 200: jsonResponse(usageSchema, "Usage"), ...errorResponses(...authErrors) },
});

export function registerUsageToday(router: Router) {
  router.openapi(route, async (c) => {
    return ok(c, await usageToday(c.var.db, c.var.user.id, c.var.config.AI_DAILY_BUDGET_USER_USD));
  });
}
