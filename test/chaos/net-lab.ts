/**
 * Real network partitions for chaos tests: each member gets its own network namespace with
 * one address on a private bridge (10.77.N.x/24); the test process reaches every member
 * through the bridge (10.77.N.254). partition(x, y) installs blackhole routes on both sides
 * (packets between them vanish; new connections fail at once with EINVAL, established ones
 * stall), heal(x, y) removes them. Needs root and iproute2; `available()` says why not.
 */
import { execFileSync } from 'node:child_process';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Labs created by this process: each gets its own id (names are not reused right away). */
let created = 0;

export class NetLab {
  private readonly ips = new Map<string, string>();

  private constructor(
    private readonly id: number,
    members: string[],
  ) {
    members.forEach((m, i) => this.ips.set(m, `10.77.${id}.${i + 1}`));
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

  static create(members: string[]): NetLab {
    const id = 100 + ((process.pid + created++) % 150);
    const lab = new NetLab(id, members);
    lab.destroy(); // leftovers from a crashed run with the same id
    try {
      const bridge = lab.bridge;
      ip('link', 'add', bridge, 'type', 'bridge');
      ip('addr', 'add', `10.77.${id}.254/24`, 'dev', bridge);
      ip('link', 'set', bridge, 'up');
      members.forEach((m, i) => {
        const ns = lab.ns(m);
        const veth = lab.veth(i);
        ip('netns', 'add', ns);
        ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        ip('link', 'set', veth, 'master', bridge, 'up');
        ip('-n', ns, 'addr', 'add', `${lab.address(m)}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        ip('-n', ns, 'link', 'set', 'lo', 'up');
      });
    } catch (err) {
      lab.destroy(); // a half-built lab leaves nothing behind
      throw err;
    }
    return lab;
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

  address(member: string): string {
    const a = this.ips.get(member);
    if (a === undefined) throw new Error(`net-lab: no member ${member}`);
    return a;
  }

  /** The command prefix that runs a program inside the member's namespace (same pid). */
  wrapper(member: string): string[] {
    return ['ip', 'netns', 'exec', this.ns(member)];
  }

  partition(x: string, y: string): void {
    ip('-n', this.ns(x), 'route', 'add', 'blackhole', `${this.address(y)}/32`);
    ip('-n', this.ns(y), 'route', 'add', 'blackhole', `${this.address(x)}/32`);
  }

  heal(x: string, y: string): void {
    ip('-n', this.ns(x), 'route', 'del', 'blackhole', `${this.address(y)}/32`);
    ip('-n', this.ns(y), 'route', 'del', 'blackhole', `${this.address(x)}/32`);
  }

  /**
   * Removes every veth (deleting one end removes the pair at once; a namespace's own cleanup
   * is asynchronous), namespace and the bridge. Idempotent.
   */
  destroy(): void {
    for (let i = 0; i < this.ips.size; i++) {
      try {
        ip('link', 'del', this.veth(i));
      } catch {
        // not there
      }
    }
    for (const m of this.ips.keys()) {
      try {
        ip('netns', 'del', this.ns(m));
      } catch {
        // not there
      }
    }
    try {
      ip('link', 'del', this.bridge);
    } catch {
      // not there
    }
  }
}
