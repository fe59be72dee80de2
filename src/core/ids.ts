/**
 * Random identities: a data directory's incarnation, a cluster id, an epoch's nonce. 128 bits
 * as 32 hex digits, so two of them never collide in practice: from the OS's CSPRNG in
 * production (systemRandom), from the injected Random otherwise (the simulator's seeded one,
 * so that a seed replays the same identities).
 */
import { randomBytes } from 'node:crypto';
import { systemRandom, type Random } from './clock';

export const randomIdBytes = 16;

export function randomId(random: Random = systemRandom): string {
  if (random === systemRandom) return randomBytes(randomIdBytes).toString('hex');
  let hex = '';
  for (let i = 0; i < randomIdBytes / 4; i++) {
    hex += Math.floor(random.next() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  }
  return hex;
}

/** The short form shown to operators (logs, `tally status`). */
export function shortId(id: string): string {
  return id === '' ? '-' : id.slice(0, 8);
}
