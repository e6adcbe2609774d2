import { describe, expect, it } from "vitest";
import { newId } from "../src/core/ids.js";

describe("row ids", () => {
  it("are UUIDv7 and sort in the order one process made them, even within one millisecond", () => {
    const ids = Array.from({ length: 20_000 }, newId);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
