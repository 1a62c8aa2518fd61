/** How commands print: JSON for machines (--json), words for people. */
export function print(json: boolean, value: unknown, human: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : human());
}

/** Colour only for a terminal that wants it (https://no-color.org). */
export function colourEnabled(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

const SGR = { red: 31, green: 32, cyan: 36, bold: 1 } as const;

export function paint(enabled: boolean, colour: keyof typeof SGR, text: string): string {
  return enabled ? `\x1b[${SGR[colour]}m${text}\x1b[0m` : text;
}
