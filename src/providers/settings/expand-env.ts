/**
 * Expands `${NAME}` in a path from the environment (systemd's `${CREDENTIALS_DIRECTORY}`).
 * Returns the names that are not set instead of guessing.
 */
export function expandEnv(text: string, env: NodeJS.ProcessEnv): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined || v === "") missing.push(name);
    return v ?? "";
  });
  return { value, missing };
}
