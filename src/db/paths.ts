/** Where the package's own files are, wherever it is installed (this file compiles to dist/db/). */
import { fileURLToPath } from "node:url";

export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export function migrationsFolderOf(dialectFolder: "sqlite" | "pg"): string {
  return fileURLToPath(new URL(`../../drizzle/${dialectFolder}`, import.meta.url));
}
