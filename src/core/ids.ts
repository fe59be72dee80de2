/**
 * Random identities: a data directory's incarnation, a cluster id, an epoch's nonce. 128 bits
 * from the OS's CSPRNG, as 32 hex digits, so two of them never collide in practice.
 */
import { randomBytes } from 'node:crypto';

export const randomIdBytes = 16;

export function randomId(): string {
  return randomBytes(randomIdBytes).toString('hex');
}

/** The short form shown to operators (logs, `tally status`). */
export function shortId(id: string): string {
  return id === '' ? '-' : id.slice(0, 8);
}
