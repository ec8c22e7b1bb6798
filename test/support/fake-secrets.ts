/**
 * Token-shaped and key-shaped test strings, assembled at run time so that the sources hold
 * nothing a secret scanner would take for a real credential.
 */
export function fakeGhToken(body: string): string {
  return ["ghs", body].join("_");
}

export function fakePemBlock(label: string, body: string): string {
  const line = (edge: string) => `-----${edge} ${label} ${"PRIVATE"} KEY-----`;
  return `${line("BEGIN")}\n${body}\n${line("END")}\n`;
}
