import { describe, expect, it } from "vitest";
import { languageHints, seededRandom, VOCABULARIES, valueForSchema } from "./generate.ts";

const request = (system: string, messages: string[]) =>
  JSON.stringify({ system, messages: [{ role: "user", content: `<conversation_data>\n${JSON.stringify({ messages })}\n</conversation_data>` }] });

describe("the local upstream's languages", () => {
  it("tells the conversation's language from its data block, not from the English prompt around it", () => {
    const prompt = "Read this chat and answer in the language of the conversation. The reason, the signals and the next move.";
    expect(languageHints(request(prompt, ["¿Qué tal tu fin de semana? Estoy muy cansada"]))).toEqual({ detected: "es", output: "es" });
    expect(languageHints(request(prompt, ["Você está bem? Tudo bem com você"]))).toEqual({ detected: "pt", output: "pt" });
    expect(languageHints(request(prompt, ["Wie war dein Wochenende? Ich bin sehr müde"]))).toEqual({ detected: "de", output: "de" });
    expect(languageHints(request(prompt, ["Salut, comment ça va ? Je suis très fatiguée"]))).toEqual({ detected: "fr", output: "fr" });
    expect(languageHints(request(prompt, ["週末はどうだった？"]))).toEqual({ detected: "ja", output: "ja" });
    expect(languageHints(request(prompt, ["How was your weekend?"]))).toEqual({ detected: "en", output: "en" });
  });

  it("writes in the language a prompt names, also when the request is JSON-escaped, and answers `language` fields with the detected one", () => {
    const hints = languageHints(request('Write it in the language with tag "de".', ["¿Qué tal?"]));
    expect(hints).toEqual({ detected: "es", output: "de" });
    const value = valueForSchema(
      { type: "object", properties: { language: { type: "string" }, nextMove: { type: "string", maxLength: 200 } } },
      seededRandom("x"),
      hints,
    ) as { language: string; nextMove: string };
    expect(value.language).toBe("es");
    const words = value.nextMove.replace(/\.$/, "").toLowerCase().split(" ");
    expect(words.every((word) => VOCABULARIES.de!.includes(word))).toBe(true);
    // Without a named or implied language (OCR, tips), answers stay English.
    expect(languageHints(request("Read the screenshot.", ["¿Qué tal?"])).output).toBe("en");
  });
});
