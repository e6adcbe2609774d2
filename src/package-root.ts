/**
 * Where the package's own files are, wherever it is installed and however it was built (tsc's
 * dist/ tree, or the CLI bundle's chunks): the nearest folder upwards holding briefdb's
 * package.json.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === "briefdb") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("briefdb: cannot find its own package.json");
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();

export function migrationsFolderOf(dialectFolder: "sqlite" | "pg"): string {
  return join(PACKAGE_ROOT, "drizzle", dialectFolder);
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
}
