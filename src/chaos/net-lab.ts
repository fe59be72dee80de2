/**
 * Real network partitions: each member gets its own network namespace with one address on a
 * private bridge (10.77.N.x/24); the process that made the lab (the test, the chaos runner: the
 * "host") reaches every member through the bridge (10.77.N.254). A cut from x to y is a
 * blackhole route to y's address in x's namespace (for the host: in the root namespace): what x
 * sends to y vanishes — new connections from x fail at once with EINVAL, established ones stall
 * — while y's packets still reach x (TCP between them stalls either way: x's answers are lost).
 * partition(x, y) cuts both ways, heal(x, y) undoes it. Cuts are counted, so two faults that
 * cut the same link overlap safely: the route goes when the last of them heals.
 * Needs root and iproute2; `unavailable()` says why not. Used by the partition tests and the
 * chaos runner (src/chaos/runner.ts).
 */
import { execFileSync } from 'node:child_process';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function ignoringErrors(f: () => unknown): void {
  try {
    f();
  } catch {
    // not there
  }
}

/** Labs created by this process: each gets its own id (names are not reused right away). */
let created = 0;
/** Lab ids (the third byte of 10.77.N.x) are labIdFirst .. labIdFirst + labIds - 1. */
const labIdFirst = 100;
const labIds = 150;

/** The pseudo-member that made the lab: it lives in the root namespace at 10.77.N.254. */
export const host = 'host';

export class NetLab {
  private readonly ips = new Map<string, string>();
  /** Active cuts by "from>to": how many faults hold each. */
  private readonly cuts = new Map<string, number>();

  private constructor(
    private readonly id: number,
    members: string[],
  ) {
    members.forEach((m, i) => this.ips.set(m, `10.77.${id}.${i + 1}`));
    this.ips.set(host, `10.77.${id}.254`);
  }

  /** null when network namespaces can be used here, else the reason they cannot. */
  static unavailable(): string | null {
    if (process.getuid?.() !== 0) return 'network namespaces need root';
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    } catch {
      return 'iproute2 (`ip`) is missing or cannot list network namespaces';
    }
    return null;
  }

  /**
   * A new lab. Its id comes from the pid, skipping ids whose namespaces hold processes (another
   * test file's or runner's lab, alive); one whose namespaces are empty is a crashed run's
   * leftover, removed and reused.
   */
  static create(members: string[]): NetLab {
    if (members.includes(host)) throw new Error(`net-lab: '${host}' is not a member name`);
    for (let attempt = 0; attempt < labIds; attempt++) {
      const lab = new NetLab(labIdFirst + ((process.pid + created++) % labIds), members);
      if (!lab.inUse()) return lab.build();
    }
    throw new Error(`net-lab: all ${labIds} lab ids are in use`);
  }

  /** Does any of this lab's namespaces hold a process? */
  private inUse(): boolean {
    return this.members.some((m) => {
      try {
        return ip('netns', 'pids', this.ns(m)).trim() !== '';
      } catch {
        return false; // no such namespace
      }
    });
  }

  private build(): NetLab {
    this.destroy(); // leftovers from a crashed run with the same id
    try {
      const bridge = this.bridge;
      ip('link', 'add', bridge, 'type', 'bridge');
      ip('addr', 'add', `${this.address(host)}/24`, 'dev', bridge);
      ip('link', 'set', bridge, 'up');
      this.members.forEach((m, i) => {
        const ns = this.ns(m);
        const veth = this.veth(i);
        ip('netns', 'add', ns);
        ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        ip('link', 'set', veth, 'master', bridge, 'up');
        ip('-n', ns, 'addr', 'add', `${this.address(m)}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        ip('-n', ns, 'link', 'set', 'lo', 'up');
      });
    } catch (err) {
      this.destroy(); // a half-built lab leaves nothing behind
      throw err;
    }
    return this;
  }

  /** Every name this lab makes starts with this (namespaces `PREFIX-member`, veths, bridge). */
  get prefix(): string {
    return `tly${this.id}`;
  }

  private get bridge(): string {
    return `tlybr${this.id}`;
  }

  private veth(i: number): string {
    return `tly${this.id}v${i}`;
  }

  private ns(member: string): string {
    return `tly${this.id}-${member}`;
  }

  private get members(): string[] {
    return [...this.ips.keys()].filter((m) => m !== host);
  }

  address(member: string): string {
    const a = this.ips.get(member);
    if (a === undefined) throw new Error(`net-lab: no member ${member}`);
    return a;
  }

  /** The command prefix that runs a program inside the member's namespace (same pid). */
  wrapper(member: string): string[] {
    return ['ip', 'netns', 'exec', this.ns(member)];
  }

  /** `ip` arguments that change routes where `from` lives. */
  private routeArgs(from: string, verb: 'add' | 'del', to: string): string[] {
    const route = ['route', verb, 'blackhole', `${this.address(to)}/32`];
    return from === host ? route : ['-n', this.ns(from), ...route];
  }

  /** What `from` sends to `to` (either may be `host`) is dropped, until uncut. */
  cut(from: string, to: string): void {
    if (from === to) throw new Error(`net-lab: cannot cut ${from} from itself`);
    const key = `${from}>${to}`;
    const n = this.cuts.get(key) ?? 0;
    if (n === 0) ip(...this.routeArgs(from, 'add', to));
    this.cuts.set(key, n + 1);
  }

  uncut(from: string, to: string): void {
    const key = `${from}>${to}`;
    const n = this.cuts.get(key) ?? 0;
    if (n === 0) throw new Error(`net-lab: ${from} → ${to} is not cut`);
    if (n === 1) {
      ip(...this.routeArgs(from, 'del', to));
      this.cuts.delete(key);
    } else this.cuts.set(key, n - 1);
  }

  partition(x: string, y: string): void {
    this.cut(x, y);
    this.cut(y, x);
  }

  heal(x: string, y: string): void {
    this.uncut(x, y);
    this.uncut(y, x);
  }

  /** Removes every cut, whoever made it. */
  healAll(): void {
    for (const key of [...this.cuts.keys()]) {
      const [from, to] = key.split('>') as [string, string];
      ignoringErrors(() => ip(...this.routeArgs(from, 'del', to)));
    }
    this.cuts.clear();
  }

  /**
   * Removes every cut, veth (deleting one end removes the pair at once; a namespace's own
   * cleanup is asynchronous), namespace and the bridge, and any blackhole route of this lab's
   * subnet left in the root namespace (by this lab or a crashed one with the same id: they
   * outlive the bridge). Idempotent.
   */
  destroy(): void {
    this.healAll();
    const subnet = `10.77.${this.id}.`;
    ignoringErrors(() => {
      for (const line of ip('-o', 'route', 'show', 'type', 'blackhole').split('\n')) {
        const dst = line.trim().split(/\s+/)[1];
        if (dst?.startsWith(subnet)) ignoringErrors(() => ip('route', 'del', 'blackhole', dst));
      }
    });
    this.members.forEach((_, i) => ignoringErrors(() => ip('link', 'del', this.veth(i))));
    for (const m of this.members) ignoringErrors(() => ip('netns', 'del', this.ns(m)));
    ignoringErrors(() => ip('link', 'del', this.bridge));
  }
}
