/**
 * Readable log lines for a terminal: pino's JSON line → `12:03:04.123 WARN  [module] message
 * key=value …`. Used by the logger when stderr is a terminal, and by `cluster up` for its
 * children's lines. Anything that is not a pino JSON object passes through unchanged.
 */

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has; the rest are printed as key=value. */
const fixed = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'module']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object' && 'message' in v && 'type' in v) {
    // pino's serialized error: its message is what a reader needs.
    return JSON.stringify((v as { message: unknown }).message);
  }
  return JSON.stringify(v) ?? String(v);
}

function clock(ms: unknown): string {
  if (typeof ms !== 'number') return '--:--:--.---';
  return new Date(ms).toISOString().slice(11, 23);
}

export function prettyLine(line: string): string {
  const trimmed = line.trimEnd();
  if (!trimmed.startsWith('{')) return line;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(trimmed) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof rec.level !== 'number' || typeof rec.msg !== 'string') return line;
  const level = (levelNames[rec.level] ?? String(rec.level)).padEnd(5);
  const module = typeof rec.module === 'string' ? ` [${rec.module}]` : '';
  const extra = Object.entries(rec)
    .filter(([k]) => !fixed.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  return `${clock(rec.time)} ${level}${module} ${rec.msg}${extra === '' ? '' : ` ${extra}`}\n`;
}

/**
 * LOG_FORMAT=json or pretty decides; otherwise pretty only when the stream is a terminal
 * (JSON for log collectors, files and pipes).
 */
export function wantPretty(stream: { isTTY?: boolean }): boolean {
  const format = process.env.LOG_FORMAT;
  if (format === 'json') return false;
  if (format === 'pretty') return true;
  return stream.isTTY === true;
}
