/**
 * A controller's ballot: what a node compares before it obeys a controller's command, so that
 * a command from a controller whose configuration was lost cannot take effect after a new
 * controller rebuilt one (a promotion delayed in the network — TCP delivers what a dead process
 * had sent — would otherwise make a second primary). A controller that creates or rebuilds a
 * configuration picks a ballot above every one the members report, and has each running member
 * store it (Admin.Fence) before it decides anything; its commands carry the ballot, and a node
 * refuses one older than the ballot it stored. `n` orders ballots; `id` (random per
 * configuration) tells two controllers that picked the same `n` apart: a node obeys a command
 * only with a higher `n` than it stored, or the very ballot it stored.
 */
export interface Ballot {
  n: number;
  id: string;
}

/** No ballot: a configuration from before ballots, or a node that never stored one. */
export const noBallot: Ballot = { n: 0, id: '' };

/** Orders ballots: by n, then by id. */
export function compareBallots(a: Ballot, b: Ballot): number {
  if (a.n !== b.n) return a.n - b.n;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** May a command carrying `command` be obeyed by a node that stored `stored`? */
export function obeys(stored: Ballot, command: Ballot): boolean {
  return command.n > stored.n || (command.n === stored.n && command.id === stored.id);
}

export function formatBallot(b: Ballot): string {
  return b.n === 0 ? 'none' : `${b.n}/${b.id.slice(0, 8)}`;
}

/** The higher of the stored ballot and a command's (undefined: the stored one, unchanged). */
export function higherBallot(stored: Ballot, command: Ballot | undefined): Ballot | undefined {
  if (command === undefined || compareBallots(command, stored) <= 0)
    return stored.n === 0 ? undefined : stored;
  return command;
}

/** A ballot from the wire (n as a decimal string or number); null when malformed. */
export function ballotOf(n: string | number | undefined, id: string | undefined): Ballot | null {
  const value = Number(n ?? 0);
  if (!Number.isSafeInteger(value) || value < 0) return null;
  return { n: value, id: id ?? '' };
}

/** A ballot a message carries: undefined for none (n = 0) or a malformed one. */
export function wireBallot(
  n: string | number | undefined,
  id: string | undefined,
): Ballot | undefined {
  const b = ballotOf(n, id);
  return b === null || b.n === 0 ? undefined : b;
}
