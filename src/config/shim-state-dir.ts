/**
 * The `stateDir` the git shim and credential helper find in a config file: they cannot parse
 * YAML, so they read it line by line (`gtk_config_state_dir` in shim/token-keeper-lib.sh; this
 * mirrors it exactly). The first line that starts with `stateDir:`, or holds `"stateDir"` and a
 * `:` after it, decides: its value, quoted or up to a space or `#`, if it is an absolute path.
 */
export function shimStateDir(text: string): string | undefined {
  for (const line of text.split("\n")) {
    let value: string;
    if (line.startsWith("stateDir:")) value = line.slice("stateDir:".length);
    else if (line.includes('"stateDir"') && line.slice(line.indexOf('"stateDir"')).includes(":")) {
      const after = line.slice(line.indexOf('"stateDir"') + '"stateDir"'.length);
      value = after.slice(after.indexOf(":") + 1);
    } else continue;
    value = value.replace(/^ +/, "");
    if (value.startsWith('"')) value = value.slice(1).split('"')[0] as string;
    else if (value.startsWith("'")) value = value.slice(1).split("'")[0] as string;
    else value = value.split(/[ #]/)[0] as string;
    return value.startsWith("/") ? value : undefined;
  }
  return undefined;
}
