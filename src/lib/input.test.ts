import { describe, expect, it } from "vitest";
import { calendarDateSchema, instantSchema, isStorableText, unstorableTextPath } from "./input";

describe("input Postgres can store", () => {
  it("takes any text but U+0000 and unpaired surrogates; a surrogate pair is one character", () => {
    for (const text of ["", "hé", "😀", "\u202e\u200b", "\uffff", "a\\u0000b"]) expect(isStorableText(text), JSON.stringify(text)).toBe(true);
    for (const text of ["\u0000", "a\u0000", "\ud800", "x\udfff", "\udfff\ud800", "😀\ud83d"]) expect(isStorableText(text), JSON.stringify(text)).toBe(false);
  });

  it("finds the first unstorable string in a value, object keys included", () => {
    expect(unstorableTextPath({ a: ["ok", { b: "x\u0000" }] })).toEqual(["a", 1, "b"]);
    expect(unstorableTextPath({ ok: 1, ["k\ud800"]: 2 })).toEqual(["k\ud800"]);
    expect(unstorableTextPath({ a: [1, true, null, "fine"] })).toBeUndefined();
  });

  it("takes instants with a zone between the years 1 and 9999 UTC", () => {
    for (const text of ["2024-02-29T12:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+01:00"]) expect(instantSchema.safeParse(text).success, text).toBe(true);
    for (const text of ["0000-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-23:59", "2023-02-29T00:00:00Z", "2024-01-01T00:00:00"]) {
      expect(instantSchema.safeParse(text).success, text).toBe(false);
    }
  });

  it("takes calendar dates that exist, between the years 1 and 9999", () => {
    for (const text of ["2024-02-29", "0001-01-01", "9999-12-31"]) expect(calendarDateSchema.safeParse(text).success, text).toBe(true);
    for (const text of ["0000-01-01", "2024-13-45", "2023-02-29", "2024-1-1"]) expect(calendarDateSchema.safeParse(text).success, text).toBe(false);
  });
});
