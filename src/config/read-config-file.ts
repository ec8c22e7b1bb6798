import { readSecretFile } from "../providers/settings/read-secret.ts";
import { parseDocument } from "yaml";
import { ConfigError } from "../errors/keeper-error.ts";

/** A config file's text; a ConfigError naming the file, why it cannot be read, and `hint`. */
export function readConfigText(file: string, hint: string): string {
  try {
    return readSecretFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTREG" || code === "EFBIG") throw new ConfigError([(error as Error).message], { cause: error });
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : String(code);
    throw new ConfigError([`${file}: ${why}; ${hint}`], { cause: error });
  }
}

/** YAML (JSON is YAML) with unique keys, as plain values; a ConfigError listing its syntax errors. */
export function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `${source}: ${e.message.split("\n")[0]}`));
  return doc.toJS() ?? {};
}
