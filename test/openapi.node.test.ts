import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";

// Runs in Node: the validator compiles JSON Schemas with `new Function`, which workerd forbids.
describe("OpenAPI document", () => {
  const load = async () => {
    const response = await createApp().request("/api/v1/openapi.json", {}, { APP_VERSION: "test" });
    expect(response.status).toBe(200);
    return (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
  };

  it("is a valid OpenAPI 3.1 document", async () => {
    const document = await load();
    expect(document.openapi).toBe("3.1.0");
    const validator = new Validator();
    const result = await validator.validate(document as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("documents every route built so far, with the error envelope", async () => {
    const { paths } = await load();
    const routes = Object.entries(paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        "GET /api/v1/health",
        "GET /api/v1/health/ready",
        "GET /api/v1/users/me",
        "PUT /api/v1/users/me",
        "DELETE /api/v1/users/me",
        "POST /api/v1/users/me/onboarding",
        "POST /api/v1/users/me/push-tokens",
        "DELETE /api/v1/users/me/push-tokens/{token}",
        "GET /api/v1/users/me/usage",
        "GET /api/v1/users/me/insights",
        "POST /api/webhooks/clerk",
        "GET /api/v1/sessions/upload-url",
        "PUT /api/v1/uploads/{key}",
        "POST /api/v1/sessions",
        "GET /api/v1/sessions",
        "GET /api/v1/sessions/{id}",
        "DELETE /api/v1/sessions/{id}",
        "POST /api/v1/sessions/{id}/confirm-ocr",
        "POST /api/v1/sessions/{id}/retry",
        "POST /api/v1/sessions/{id}/messages",
        "PATCH /api/v1/sessions/{id}/messages/{messageId}",
        "DELETE /api/v1/sessions/{id}/messages/{messageId}",
        "GET /api/v1/sessions/{id}/ws",
        "GET /api/v1/magic-openers/generations/{id}/ws",
        "POST /api/v1/sessions/{id}/ws-ticket",
        "POST /api/v1/magic-openers/generations/{id}/ws-ticket",
        "POST /api/v1/sessions/{id}/generate-suggestions",
        "GET /api/v1/sessions/{id}/suggestions",
        "POST /api/v1/suggestions/{id}/feedback",
        "POST /api/v1/magic-openers/generate",
        "GET /api/v1/magic-openers",
        "POST /api/v1/magic-openers/{id}/toggle",
        "DELETE /api/v1/magic-openers/{id}",
        "GET /api/v1/tips/today",
        "POST /jobs/{name}",
      ].sort(),
    );
    const getMe = paths["/api/v1/users/me"]?.get as { security: unknown; responses: Record<string, unknown> };
    expect(getMe.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(getMe.responses)).toEqual(expect.arrayContaining(["200", "401", "429", "500"]));
    expect(JSON.stringify(getMe.responses["401"])).toContain("#/components/schemas/ErrorEnvelope");
    expect((getMe.responses["401"] as { description: string }).description).toContain("ACCOUNT_DELETED");
  });
});
