/**
 * Which node the client sends to. It starts with the first address (or what the resolver
 * says), jumps to the address a standby names in FAILED_PRECONDITION, and moves on to the next
 * configured address when a node fails without saying where the primary is.
 *
 * Every change is compare-and-set on the address that failed: when one stream drops a thousand
 * requests, the first failure moves the target and the other 999 do not move it again.
 */

/**
 * How long a hint naming a node this client just lost (its stream broke: refused, dropped, or
 * silent past the keepalive) is not followed. The standby that names it has not been promoted
 * yet (the controller acts within about its failover timeout, at once on a crash): the client
 * stays with the standby and retries shortly instead of going back to a node it knows is gone.
 */
export const lostHintIgnoreMs = 1000;

/**
 * The seam for primary discovery beyond a fixed address list (the failover controller's view
 * of the cluster, a DNS record, …): called when the client is created, whenever the current
 * target failed without a hint, and while a client without addresses knows no target; an
 * address it returns becomes the target. undefined (or a rejection) keeps the address-list
 * rotation. Called at most once at a time.
 */
export type PrimaryResolver = () => Promise<string | undefined>;

export class PrimaryFinder {
  private readonly addresses: readonly string[];
  private current: string | undefined;
  /** Position in addresses of the last address taken from the list (hints are not in it). */
  private cursor = 0;
  private resolving = false;
  private closed = false;
  /** Nodes whose stream broke, and when (monotonic ms). */
  private readonly lostAt = new Map<string, number>();

  constructor(
    addresses: readonly string[],
    private readonly resolver: PrimaryResolver | undefined,
    /** Called when the target changes by itself (a resolver answer): send what waits. */
    private readonly changed: () => void,
  ) {
    this.addresses = [...addresses];
    this.current = this.addresses[0];
    this.refresh();
  }

  /** Where to send now; undefined only while a resolver-only client knows no address yet. */
  get target(): string | undefined {
    return this.current;
  }

  /**
   * A node at `from` said the primary is at `hint`. False when the hint names a node this
   * client lost less than lostHintIgnoreMs ago: the target stays, the caller retries it shortly.
   */
  redirect(from: string, hint: string, nowMs: number): boolean {
    if (this.lostRecently(hint, nowMs)) return false;
    if (this.current === from && hint !== from) this.current = hint;
    return true;
  }

  /** The stream to `from` broke (refused, dropped, silent): the next node, and see redirect(). */
  lost(from: string, nowMs: number): void {
    this.lostAt.set(from, nowMs);
    this.failed(from, nowMs);
  }

  /**
   * The node at `from` failed or refused without naming the primary: try the next one — the
   * next not lost in the last lostHintIgnoreMs, if there is one (a node that answered "not
   * serving yet" while being promoted is better than one whose stream just broke).
   */
  failed(from: string, nowMs: number): void {
    if (this.current !== from) return;
    const n = this.addresses.length;
    if (n > 0) {
      // A hinted address is not in the list: go on after the last list address tried.
      const at = this.addresses.indexOf(from);
      if (at >= 0) this.cursor = at;
      let next = (this.cursor + 1) % n;
      for (let k = 1; k <= n; k++) {
        const i = (this.cursor + k) % n;
        const address = this.addresses[i] as string;
        if (address !== from && !this.lostRecently(address, nowMs)) {
          next = i;
          break;
        }
        // Every other node was lost just now, and `from` answered: stay with it.
        if (k === n && !this.lostRecently(from, nowMs)) next = -1;
      }
      if (next >= 0) {
        this.cursor = next;
        this.current = this.addresses[next];
      }
    }
    this.refresh();
  }

  private lostRecently(address: string, nowMs: number): boolean {
    const lost = this.lostAt.get(address);
    return lost !== undefined && nowMs - lost < lostHintIgnoreMs;
  }

  close(): void {
    this.closed = true;
  }

  /** Asks the resolver (if any, and not already asking) where the primary is. */
  refresh(): void {
    if (this.resolver === undefined || this.resolving) return;
    this.resolving = true;
    this.resolver().then(
      (address) => {
        this.resolving = false;
        if (this.closed || address === undefined || address === this.current) return;
        this.current = address;
        this.changed();
      },
      () => {
        // A resolver that fails leaves the rotation in charge; the next failure asks again.
        this.resolving = false;
      },
    );
  }
}
