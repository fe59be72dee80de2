/**
 * Which node the client sends to. It starts with the first address (or what the resolver
 * says), jumps to the address a standby names in FAILED_PRECONDITION, and moves on to the next
 * configured address when a node fails without saying where the primary is.
 *
 * Every change is compare-and-set on the address that failed: when one stream drops a thousand
 * requests, the first failure moves the target and the other 999 do not move it again.
 */

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

  /** A node at `from` said the primary is at `hint`. */
  redirect(from: string, hint: string): void {
    if (this.current === from && hint !== from) this.current = hint;
  }

  /** The node at `from` failed or refused without naming the primary: try the next one. */
  failed(from: string): void {
    if (this.current !== from) return;
    if (this.addresses.length > 0) {
      // A hinted address is not in the list: go on after the last list address tried.
      const at = this.addresses.indexOf(from);
      if (at >= 0) this.cursor = at;
      this.cursor = (this.cursor + 1) % this.addresses.length;
      this.current = this.addresses[this.cursor];
    }
    this.refresh();
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
