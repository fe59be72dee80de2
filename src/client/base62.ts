/**
 * Short codes for IDs: base 62 with the alphabet `0-9A-Za-z` (digit value 0..9, then A = 10 ..
 * Z = 35, then a = 36 .. z = 61), most significant digit first, no padding. 0 is "0";
 * 2^53-1 (the largest ID) is "fFgnDxSe7", so a code is at most 9 characters.
 *
 * Codes are canonical: fromBase62 refuses a leading "0" (other than "0" itself), so every ID
 * has exactly one code and toBase62(fromBase62(s)) === s for every accepted s.
 */

export const base62Alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The length of the code of Number.MAX_SAFE_INTEGER: no valid code is longer. */
export const base62LengthMax = 9;

/** Digit value by char code (-1: not a base-62 digit); built once. */
const digitValue = ((): Int8Array => {
  const table = new Int8Array(128).fill(-1);
  for (let i = 0; i < base62Alphabet.length; i++) table[base62Alphabet.charCodeAt(i)] = i;
  return table;
})();

/** The base-62 code of n, an integer from 0 to 2^53-1. */
export function toBase62(n: number): string {
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw new TypeError(`base62: expected an integer, got ${describe(n)}`);
  }
  if (n < 0 || n > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`base62: ${n} is outside 0 .. 2^53-1`);
  }
  if (n === 0) return '0';
  let code = '';
  while (n > 0) {
    code = (base62Alphabet[n % 62] as string) + code;
    n = Math.floor(n / 62);
  }
  return code;
}

/** The integer a canonical base-62 code stands for (0 .. 2^53-1). */
export function fromBase62(code: string): number {
  if (typeof code !== 'string') {
    throw new TypeError(`base62: expected a string, got ${describe(code)}`);
  }
  if (code.length === 0) throw new RangeError('base62: empty code');
  if (code.length > 1 && code[0] === '0') {
    throw new RangeError(`base62: "${clip(code)}" has a leading 0 (codes are canonical)`);
  }
  let value = 0;
  for (let i = 0; i < code.length; i++) {
    const c = code.charCodeAt(i);
    const digit = c < 128 ? (digitValue[c] as number) : -1;
    if (digit < 0) {
      throw new RangeError(
        `base62: "${clip(code)}" has a character outside 0-9A-Za-z at position ${i}`,
      );
    }
    // Exact up to 2^53-1; a true value of 2^53 or more rounds to 2^53 or more, never below.
    value = value * 62 + digit;
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`base62: "${clip(code)}" is above 2^53-1`);
    }
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}

/** Error messages quote at most a few characters of what they were given. */
function clip(code: string): string {
  return code.length <= 16 ? code : `${code.slice(0, 16)}…`;
}
