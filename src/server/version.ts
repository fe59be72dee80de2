/**
 * The package version, read once from package.json at the package root (the same relative
 * path from src/server and dist/server).
 */
import fs from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached === undefined) {
    const file = path.join(__dirname, '..', '..', 'package.json');
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
    cached = typeof parsed.version === 'string' ? parsed.version : 'unknown';
  }
  return cached;
}
