/**
 * Reads the YAML that workflow files are written in — block maps and lists by indentation, plain,
 * quoted and flow-list scalars, `|` and `>-` block scalars, comments — into plain values, so a test
 * can check a documented workflow's structure and run its steps. Anything outside that subset
 * (anchors, tags, multi-document files) throws rather than being misread.
 */
interface Line {
  readonly indent: number;
  readonly text: string;
  readonly raw: string;
  /** Its index among the source's lines. */
  readonly number: number;
}

export function parseYamlSubset(source: string): unknown {
  const rawLines = source.split("\n");
  const lines: Line[] = rawLines
    .map((raw, number) => ({ raw, number, indent: raw.length - raw.trimStart().length, text: stripComment(raw.trim()) }))
    .filter((line) => line.text !== "");
  let at = 0;

  function block(indent: number): unknown {
    const first = lines[at];
    if (first === undefined || first.indent < indent) return null;
    return first.text.startsWith("- ") || first.text === "-" ? list(first.indent) : map(first.indent);
  }

  function list(indent: number): unknown[] {
    const items: unknown[] = [];
    while (lines[at]?.indent === indent && (lines[at]!.text.startsWith("- ") || lines[at]!.text === "-")) {
      const line = lines[at]!;
      const rest = line.text.slice(1).trimStart();
      if (rest === "") {
        at++;
        items.push(block(indent + 1));
      } else if (/^[\w"'-][^:]*:( |$)/.test(rest) && !/^["']/.test(rest)) {
        // "- key: value" opens a map whose keys sit two columns further in
        lines[at] = { ...line, indent: indent + 2, text: rest };
        items.push(map(indent + 2));
      } else {
        at++;
        items.push(scalar(rest));
      }
    }
    return items;
  }

  function map(indent: number): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    while (lines[at]?.indent === indent && !lines[at]!.text.startsWith("- ")) {
      const line = lines[at]!;
      const match = /^("[^"]*"|'[^']*'|[^:]+?):(?: (.*))?$/.exec(line.text);
      if (match === null) throw new Error(`not in the YAML subset: ${line.raw}`);
      const key = String(scalar(match[1]!));
      const value = match[2]?.trim() ?? "";
      at++;
      if (value === "|" || value === ">-" || value === ">") result[key] = blockScalar(indent, value);
      else if (value === "") result[key] = lines[at] !== undefined && lines[at]!.indent > indent ? block(indent + 1) : lines[at]?.indent === indent && lines[at]!.text.startsWith("- ") ? list(indent) : null;
      else result[key] = scalar(value);
    }
    return result;
  }

  function blockScalar(indent: number, style: string): string {
    // the raw lines below the key, comments and blank lines included: they are text here
    const body: string[] = [];
    let bodyIndent: number | undefined;
    let number = lines[at - 1]!.number + 1;
    for (; number < rawLines.length; number++) {
      const raw = rawLines[number]!;
      const lineIndent = raw.length - raw.trimStart().length;
      if (raw.trim() !== "" && lineIndent <= indent) break;
      if (raw.trim() !== "") bodyIndent ??= lineIndent;
      body.push(raw.slice(bodyIndent ?? 0));
    }
    while (lines[at] !== undefined && lines[at]!.number < number) at++;
    const text = body.join("\n").replace(/\n+$/, "");
    return style === "|" ? `${text}\n` : text.split("\n").join(" ");
  }

  const value = block(0);
  if (at !== lines.length) throw new Error(`not in the YAML subset: ${lines[at]!.raw}`);
  return value;
}

function stripComment(text: string): string {
  if (text.startsWith("#")) return "";
  const hash = text.search(/ #/);
  return hash === -1 || /^["']/.test(text) ? text : text.slice(0, hash).trimEnd();
}

function scalar(text: string): unknown {
  if (/^&|^\*|^!/.test(text)) throw new Error(`not in the YAML subset: ${text}`);
  if (/^".*"$/.test(text)) return JSON.parse(text);
  if (/^'.*'$/.test(text)) return text.slice(1, -1).replaceAll("''", "'");
  if (/^\[.*\]$/.test(text)) return text.slice(1, -1).split(",").map((item) => scalar(item.trim())).filter((item) => item !== "");
  if (text === "true" || text === "false") return text === "true";
  if (text === "null" || text === "~") return null;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}
