/**
 * compactDatabase: after a clear, gives the space the removed rows took back to the disk and says
 * how much that was (a large seed cleared leaves a SQLite file of its old size, full of free pages).
 */
import type { BriefDatabase, StorageSize } from "../../db/database.js";

export interface CompactResult {
  readonly beforeBytes: number;
  readonly afterBytes: number;
  /** beforeBytes − afterBytes, never below 0. */
  readonly freedBytes: number;
}

/** Free space worth offering to compact: below it, a VACUUM costs more than it gives. */
export const COMPACT_WORTH_BYTES = 1024 * 1024;

export async function compactDatabase(db: BriefDatabase, before?: StorageSize): Promise<CompactResult> {
  const beforeBytes = (before ?? (await db.storage())).bytes;
  await db.compact();
  const afterBytes = (await db.storage()).bytes;
  return { beforeBytes, afterBytes, freedBytes: Math.max(0, beforeBytes - afterBytes) };
}

/** Whether `storage` holds enough free space to offer compacting it. */
export function worthCompacting(storage: StorageSize): boolean {
  return storage.freeBytes !== undefined && storage.freeBytes >= COMPACT_WORTH_BYTES;
}
