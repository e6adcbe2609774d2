/**
 * What a migration statement does, read with PostgreSQL's own parser (libpg-query, compiled to
 * WebAssembly): its kind, the table it locks, the index it makes or removes. The lock hazards and
 * the online runner work from this shape, never from the SQL text. The parser's scanner also gives
 * token positions, which is how a CREATE INDEX is rewritten to run CONCURRENTLY under another name
 * without touching the rest of the statement, and an ADD CONSTRAINT to be added NOT VALID.
 */
import { loadModule, parseSync, scanSync } from "libpg-query";
import { quoteIdentifier } from "./sql-text.js";

export type StatementKind =
  | "create-table"
  | "create-index"
  | "drop-index"
  | "rename-index"
  | "add-foreign-key"
  | "add-check"
  | "add-column"
  | "validate-constraint"
  | "alter-table"
  | "drop-table"
  | "write-rows"
  | "other";

export interface StatementShape {
  readonly kind: StatementKind;
  /** The statement as written in the migration file. */
  readonly text: string;
  /** The table it locks (for drop-index: unknown from the text, null). */
  readonly table: string | null;
  /** create-index / drop-index / rename-index: the index's name (rename-index: the old one; null when unnamed). */
  readonly index: string | null;
  /** add-foreign-key: the referenced table, which is locked too. */
  readonly referencedTable: string | null;
  /** create-index: CONCURRENTLY written in the file already. */
  readonly concurrent: boolean;
  /** add-foreign-key / add-check / validate-constraint: the constraint's name (null when unnamed). */
  readonly constraint: string | null;
  /** add-foreign-key / add-check: NOT VALID written in the file already (no scan of existing rows). */
  readonly notValid: boolean;
}

type Node = Record<string, unknown>;

let loaded: Promise<void> | undefined;

/** Describes statements written in PostgreSQL's grammar; one the parser rejects is "other". */
export async function describeStatements(statements: readonly string[]): Promise<StatementShape[]> {
  loaded ??= loadModule();
  await loaded;
  return statements.map(describeOne);
}

function describeOne(text: string): StatementShape {
  const base = { text, table: null, index: null, referencedTable: null, concurrent: false, constraint: null, notValid: false };
  let stmts: Array<{ stmt?: Node }>;
  try {
    stmts = (parseSync(text) as { stmts: Array<{ stmt?: Node }> }).stmts;
  } catch {
    return { ...base, kind: "other" };
  }
  const stmt = stmts.length === 1 ? stmts[0]?.stmt : undefined;
  if (stmt === undefined) return { ...base, kind: "other" };
  const [type, body] = Object.entries(stmt)[0] as [string, Node];
  switch (type) {
    case "CreateStmt":
      return { ...base, kind: "create-table", table: relationName(body.relation) };
    case "IndexStmt":
      return {
        ...base,
        kind: "create-index",
        table: relationName(body.relation),
        index: typeof body.idxname === "string" ? body.idxname : null,
        concurrent: body.concurrent === true,
      };
    case "DropStmt":
      return describeDrop(base, body);
    case "RenameStmt":
      return body.renameType === "OBJECT_INDEX" ? { ...base, kind: "rename-index", index: relationName(body.relation) } : { ...base, kind: "other" };
    case "AlterTableStmt":
      return describeAlter(base, body);
    case "InsertStmt":
    case "UpdateStmt":
    case "DeleteStmt":
      return { ...base, kind: "write-rows", table: relationName(body.relation) };
    default:
      return { ...base, kind: "other" };
  }
}

function describeDrop(base: Omit<StatementShape, "kind">, body: Node): StatementShape {
  const objects = (body.objects as Node[] | undefined) ?? [];
  const only = objects.length === 1 ? qualifiedName(objects[0]) : null;
  if (body.removeType === "OBJECT_INDEX") return { ...base, kind: "drop-index", index: only, concurrent: body.concurrent === true };
  if (body.removeType === "OBJECT_TABLE") return { ...base, kind: "drop-table", table: only };
  return { ...base, kind: "other" };
}

function describeAlter(base: Omit<StatementShape, "kind">, body: Node): StatementShape {
  const table = relationName(body.relation);
  const cmds = ((body.cmds as Node[] | undefined) ?? []).map((cmd) => cmd.AlterTableCmd as Node);
  const cmd = cmds.length === 1 ? cmds[0] : undefined;
  if (cmd?.subtype === "AT_ValidateConstraint") {
    return { ...base, kind: "validate-constraint", table, constraint: typeof cmd.name === "string" ? cmd.name : null };
  }
  if (cmd?.subtype === "AT_AddColumn" && addsColumnWithoutRewrite(cmd.def as Node | undefined)) return { ...base, kind: "add-column", table };
  const constraint = cmd?.subtype === "AT_AddConstraint" ? ((cmd.def as Node | undefined)?.Constraint as Node | undefined) : undefined;
  if (constraint?.contype === "CONSTR_FOREIGN" || (constraint?.contype === "CONSTR_CHECK" && constraint.is_enforced === true)) {
    return {
      ...base,
      kind: constraint.contype === "CONSTR_FOREIGN" ? "add-foreign-key" : "add-check",
      table,
      referencedTable: relationName(constraint.pktable),
      constraint: typeof constraint.conname === "string" ? constraint.conname : null,
      notValid: constraint.skip_validation === true,
    };
  }
  return { ...base, kind: "alter-table", table };
}

/**
 * An ADD COLUMN that changes only the catalog (PostgreSQL 11+): no default or a constant one, and
 * no constraint but NULL / NOT NULL. A volatile default, a generated or identity column, or an
 * inline CHECK, REFERENCES, UNIQUE or PRIMARY KEY would rewrite, scan or index the table.
 */
function addsColumnWithoutRewrite(def: Node | undefined): boolean {
  const column = def?.ColumnDef as Node | undefined;
  if (column === undefined) return false;
  const constraints = ((column.constraints as Node[] | undefined) ?? []).map((c) => c.Constraint as Node);
  return constraints.every((c) => {
    if (c.contype === "CONSTR_NOTNULL" || c.contype === "CONSTR_NULL") return true;
    return c.contype === "CONSTR_DEFAULT" && isConstant(c.raw_expr as Node | undefined);
  });
}

/** A literal, possibly cast (`0`, `'active'`, `'{}'::jsonb`, `NULL`). */
function isConstant(expr: Node | undefined): boolean {
  if (expr?.A_Const !== undefined) return true;
  const cast = expr?.TypeCast as Node | undefined;
  return cast !== undefined && isConstant(cast.arg as Node | undefined);
}

function relationName(relation: unknown): string | null {
  const name = (relation as Node | undefined)?.relname;
  return typeof name === "string" ? name : null;
}

/** The last part of a possibly schema-qualified name (a List of String nodes). */
function qualifiedName(object: Node | undefined): string | null {
  const items = ((object?.List as Node | undefined)?.items as Node[] | undefined) ?? [];
  const last = items[items.length - 1]?.String as Node | undefined;
  return typeof last?.sval === "string" ? last.sval : null;
}

/**
 * A CREATE INDEX statement rewritten to build CONCURRENTLY, optionally under another name: the
 * scanner locates the INDEX keyword and the name token; everything else stays as written.
 */
export function concurrentCreateIndex(text: string, newName?: string): string {
  const tokens = scanSync(text).tokens;
  const at = tokens.findIndex((token) => token.text.toUpperCase() === "INDEX");
  const indexToken = tokens[at];
  if (indexToken === undefined) throw new Error(`not a CREATE INDEX statement: ${text}`);
  // CREATE INDEX [IF NOT EXISTS] name ON …
  const ifNotExists = tokens[at + 1]?.text.toUpperCase() === "IF";
  const nameToken = tokens[at + (ifNotExists ? 4 : 1)];
  const named = nameToken !== undefined && nameToken.text.toUpperCase() !== "ON";
  const head = `${text.slice(0, indexToken.end)} CONCURRENTLY`;
  if (newName === undefined || !named) return `${head}${text.slice(indexToken.end)}`;
  return `${head}${text.slice(indexToken.end, nameToken.start)}${quoteIdentifier(newName)}${text.slice(nameToken.end)}`;
}

/**
 * An ALTER TABLE … ADD CONSTRAINT statement with NOT VALID added at the end of the constraint (the
 * scanner finds the last token before any closing semicolon); everything else stays as written.
 */
export function notValidConstraint(text: string): string {
  const tokens = scanSync(text).tokens;
  const last = tokens.findLast((token) => token.text !== ";");
  if (last === undefined) throw new Error(`not an ADD CONSTRAINT statement: ${text}`);
  return `${text.slice(0, last.end)} NOT VALID${text.slice(last.end)}`;
}
