// Calls to a running local Worker over HTTP, as a client makes them: for the benches and the
// tests that drive a real `wrangler dev`.

/** Creates a text session of `messages` messages through the real API; resolves its id. */
export async function seedSession(url: string, token: string, messages: number): Promise<string> {
  const response = await fetch(`${url}/api/v1/sessions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      type: "text",
      messages: Array.from({ length: messages }, (_, i) => ({
        sender: i % 2 === 0 ? "match" : "user",
        text: `Message ${i + 1}: so where would you take me on a first date?`,
      })),
    }),
  });
  return (await expectJson<{ data: { id: string } }>(response, 201, "POST /api/v1/sessions")).data.id;
}

/** JSON of a response that must have `status`; anything else throws with the body. */
export async function expectJson<T>(response: Response, status: number, what: string): Promise<T> {
  const text = await response.text();
  if (response.status !== status) throw new Error(`${what} answered ${response.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}
