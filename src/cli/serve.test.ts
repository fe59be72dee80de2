import { describe, expect, it } from 'vitest';
import { reportsClientAddress } from './serve';

describe('serve: the client address a node reports (GetConfig client_address)', () => {
  it('is --advertise when given, the listen address when it names a host, nothing for a wildcard listen host', () => {
    expect(reportsClientAddress('127.0.0.1:7400', undefined)).toBe(true);
    expect(reportsClientAddress('10.0.0.5:7400', undefined)).toBe(true);
    expect(reportsClientAddress('0.0.0.0:7400', undefined)).toBe(false);
    expect(reportsClientAddress('[::]:7400', undefined)).toBe(false);
    expect(reportsClientAddress('0.0.0.0:7400', 'host-a:7400')).toBe(true);
  });
});
