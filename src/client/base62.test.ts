import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random';
import { base62Alphabet, base62LengthMax, fromBase62, toBase62 } from './base62';

describe('base62', () => {
  it('uses 0-9, then A-Z, then a-z as digits 0..61, most significant first', () => {
    expect(base62Alphabet).toHaveLength(62);
    expect(new Set(base62Alphabet).size).toBe(62);
    const cases: [number, string][] = [
      [0, '0'],
      [9, '9'],
      [10, 'A'],
      [35, 'Z'],
      [36, 'a'],
      [61, 'z'],
      [62, '10'],
      [62 * 62 - 1, 'zz'],
      [62 * 62, '100'],
      [Number.MAX_SAFE_INTEGER, 'fFgnDxSe7'],
    ];
    for (const [n, code] of cases) {
      expect(toBase62(n), `toBase62(${n})`).toBe(code);
      expect(fromBase62(code), `fromBase62(${code})`).toBe(n);
    }
    expect(toBase62(Number.MAX_SAFE_INTEGER)).toHaveLength(base62LengthMax);
  });

  it('round-trips every power of 62 and its neighbours, and random IDs up to 2^53-1', () => {
    const values: number[] = [1, Number.MAX_SAFE_INTEGER - 1];
    for (let p = 1; p <= Number.MAX_SAFE_INTEGER; p *= 62) values.push(p - 1, p, p + 1);
    const random = seededRandom(62);
    for (let i = 0; i < 10_000; i++) {
      values.push(Math.floor(random() * Number.MAX_SAFE_INTEGER));
      values.push(Math.floor(random() * 1_000_000));
    }
    for (const n of values) {
      const code = toBase62(n);
      expect(fromBase62(code)).toBe(n);
      expect(code).toMatch(/^(0|[1-9A-Za-z][0-9A-Za-z]*)$/);
    }
  });

  it('toBase62 refuses non-integers (TypeError) and integers outside 0..2^53-1 (RangeError)', () => {
    for (const bad of [1.5, NaN, Infinity, -Infinity, '7', null, undefined, 7n]) {
      expect(() => toBase62(bad as number), String(bad)).toThrow(TypeError);
    }
    for (const bad of [-1, Number.MAX_SAFE_INTEGER + 1, 2 ** 60]) {
      expect(() => toBase62(bad), String(bad)).toThrow(RangeError);
    }
    expect(() => toBase62(-1)).toThrow(/^base62: -1 is outside 0 \.\. 2\^53-1$/);
  });

  it('fromBase62 refuses empty codes, characters outside the alphabet, leading zeros and values above 2^53-1', () => {
    expect(() => fromBase62(42 as unknown as string)).toThrow(TypeError);
    const bad: [string, RegExp][] = [
      ['', /empty code/],
      [' 1', /outside 0-9A-Za-z at position 0/],
      ['1-', /outside 0-9A-Za-z at position 1/],
      ['ab_c', /outside 0-9A-Za-z at position 2/],
      ['é', /outside 0-9A-Za-z at position 0/],
      ['1\u0000', /outside 0-9A-Za-z at position 1/],
      ['00', /leading 0/],
      ['0A', /leading 0/],
      ['fFgnDxSe8', /above 2\^53-1/], // 2^53
      ['zzzzzzzzz', /above 2\^53-1/],
      ['1000000000', /above 2\^53-1/],
      ['z'.repeat(40), /above 2\^53-1/],
    ];
    for (const [code, message] of bad) {
      expect(() => fromBase62(code), JSON.stringify(code)).toThrow(RangeError);
      expect(() => fromBase62(code), JSON.stringify(code)).toThrow(message);
    }
  });
});
