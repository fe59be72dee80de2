/**
 * An in-memory Storage that models what a crash does to a real disk:
 *   - file contents: only what was fdatasynced, or written by a writeDurable() that resolved,
 *     survives crash();
 *   - directory entries (create, rename, unlink): only what was followed by syncDir();
 *   - crash({ tearLastWriteAt: k }): the newest un-synced write reaches the disk up to byte k;
 *   - flipBit(): damages bytes already on "disk";
 *   - failOn(): makes chosen operations throw an errno (ENOSPC, EIO).
 * Used by unit tests and, later, by the deterministic simulator.
 */
import * as path from 'node:path';
import type { OpenMode, Storage, StorageFile } from '../wal/storage';

interface Inode {
  data: Buffer;
  size: number;
  durable: Buffer;
  durableSize: number;
}

interface PendingWrite {
  inode: Inode;
  position: number;
  bytes: Buffer;
}

export type FaultOp = 'write' | 'datasync' | 'create' | 'rename' | 'syncDir';

function errno(code: string, op: string, target: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: fault injected on ${op} ${target}`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

function grow(buf: Buffer, size: number): Buffer {
  if (buf.length >= size) return buf;
  const bigger = Buffer.alloc(Math.max(size, buf.length * 2));
  buf.copy(bigger);
  return bigger;
}

class FaultFile implements StorageFile {
  constructor(
    private readonly owner: FaultStorage,
    readonly path: string,
    private readonly inode: Inode,
  ) {}

  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    const pending = this.gatedWrite(buf, offset, length, position);
    if (pending instanceof Promise) await pending;
  }

  /**
   * writePending at once when the disk is not hung (no extra await: the simulator's order of
   * events stays what it was); else once unhung, with the bytes taken at the call (as a
   * syscall takes them), not at unhang() time.
   */
  private gatedWrite(
    buf: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): PendingWrite | Promise<PendingWrite> {
    const hung = this.owner.gate(this.path);
    if (hung === undefined) return this.writePending(buf, offset, length, position);
    const bytes = Buffer.from(buf.subarray(offset, offset + length));
    return hung.then(() => this.writePending(bytes, 0, length, position));
  }

  /**
   * O_DSYNC: a write whose own bytes are durable once it resolves. Modelled as a write (the
   * 'write' fault op) that is un-synced for a moment — a crash taken at its 'datasync' op
   * drops or tears it like any pending write — and then made durable ('datasync' fault op:
   * failing there leaves it written but not durable, as a failed fdatasync would). Unlike
   * datasync(), earlier pending writes to the file stay pending.
   */
  async writeDurable(
    buf: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<void> {
    const gated = this.gatedWrite(buf, offset, length, position);
    const pending = gated instanceof Promise ? await gated : gated;
    this.owner.check('datasync', this.path);
    const inode = this.inode;
    const end = position + length;
    if (inode.durable.length < end) {
      const bigger = Buffer.alloc(Math.max(end, inode.durableSize * 2));
      inode.durable.copy(bigger, 0, 0, inode.durableSize);
      inode.durable = bigger;
    }
    pending.bytes.copy(inode.durable, position);
    inode.durableSize = Math.max(inode.durableSize, end);
    this.owner.madeDurable(pending);
  }

  private writePending(
    buf: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): PendingWrite {
    this.owner.check('write', this.path);
    const bytes = Buffer.from(buf.subarray(offset, offset + length));
    this.inode.data = grow(this.inode.data, position + length);
    bytes.copy(this.inode.data, position);
    this.inode.size = Math.max(this.inode.size, position + length);
    const pending = { inode: this.inode, position, bytes };
    this.owner.recordWrite(pending);
    return pending;
  }

  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const n = Math.max(0, Math.min(length, this.inode.size - position));
    this.inode.data.copy(buf, offset, position, position + n);
    return n;
  }

  async datasync(): Promise<void> {
    const hung = this.owner.gate(this.path);
    if (hung !== undefined) await hung;
    this.owner.check('datasync', this.path);
    this.inode.durable = Buffer.from(this.inode.data.subarray(0, this.inode.size));
    this.inode.durableSize = this.inode.size;
    this.owner.forgetWrites(this.inode);
  }

  async size(): Promise<number> {
    return this.inode.size;
  }

  async close(): Promise<void> {}
}

export class FaultStorage implements Storage {
  private entries = new Map<string, Inode>();
  private durableEntries = new Map<string, Inode>();
  private dirs = new Set<string>();
  private pending: PendingWrite[] = [];
  private faults: Array<{ op: FaultOp; code: string; match: RegExp; times: number }> = [];
  /** Counts every operation, so a test can crash "after the Nth step". */
  opCount = 0;
  onOp: ((op: string, target: string) => void) | null = null;

  /** While set: writes and syncs to matching files wait (a hung disk), until unhang(). */
  private hung: { match: RegExp; waiting: Array<() => void> } | null = null;

  /**
   * Hangs every write and sync to files matching `match` from now on (a disk or controller
   * that stopped answering): they complete, in order, at unhang() — or never, when the process
   * "crashed" meanwhile and the storage is not unhung.
   */
  hang(match: RegExp = /.*/): void {
    this.hung ??= { match, waiting: [] };
  }

  unhang(): void {
    const hung = this.hung;
    this.hung = null;
    for (const resume of hung?.waiting ?? []) resume();
  }

  /** undefined when `target` is not hung; else resolves when the disk is unhung (see hang()). */
  gate(target: string): Promise<void> | undefined {
    const hung = this.hung;
    if (hung === null || !hung.match.test(target)) return undefined;
    return new Promise((resolve) => hung.waiting.push(resolve));
  }

  failOn(op: FaultOp, code: string, match: RegExp = /.*/, times = Infinity): void {
    this.faults.push({ op, code, match, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  check(op: FaultOp, target: string): void {
    this.opCount++;
    this.onOp?.(op, target);
    const fault = this.faults.find((f) => f.op === op && f.match.test(target) && f.times > 0);
    if (fault) {
      fault.times--;
      throw errno(fault.code, op, target);
    }
  }

  recordWrite(w: PendingWrite): void {
    this.pending.push(w);
  }

  forgetWrites(inode: Inode): void {
    this.pending = this.pending.filter((w) => w.inode !== inode);
  }

  /**
   * A writeDurable() finished: it is no longer pending, and older pending writes it overlaps
   * now carry its bytes there (the page cache holds the newest data, so tearing an older write
   * later can never bring back what the durable one replaced).
   */
  madeDurable(done: PendingWrite): void {
    this.pending = this.pending.filter((w) => w !== done);
    const doneEnd = done.position + done.bytes.length;
    for (const w of this.pending) {
      if (w.inode !== done.inode) continue;
      const from = Math.max(w.position, done.position);
      const to = Math.min(w.position + w.bytes.length, doneEnd);
      if (from < to)
        done.bytes.copy(w.bytes, from - w.position, from - done.position, to - done.position);
    }
  }

  /** Bytes of the newest un-synced write (for tearing it at every offset). */
  lastWriteBytes(): number {
    return this.pending[this.pending.length - 1]?.bytes.length ?? 0;
  }

  /** What survives a power cut: synced directory entries with their synced contents. */
  crash(opts: { tearLastWriteAt?: number } = {}): FaultStorage {
    const last = this.pending[this.pending.length - 1];
    const next = new FaultStorage();
    next.dirs = new Set(this.dirs);
    const copies = new Map<Inode, Inode>();
    for (const [p, inode] of this.durableEntries) {
      let copy = copies.get(inode);
      if (!copy) {
        const durable = Buffer.from(inode.durable.subarray(0, inode.durableSize));
        if (last && last.inode === inode && opts.tearLastWriteAt !== undefined) {
          const kept = last.bytes.subarray(0, opts.tearLastWriteAt);
          const end = Math.max(durable.length, last.position + kept.length);
          const torn = grow(Buffer.from(durable), end).subarray(0, end);
          kept.copy(torn, last.position);
          copy = {
            data: Buffer.from(torn),
            size: end,
            durable: Buffer.from(torn),
            durableSize: end,
          };
        } else {
          copy = {
            data: Buffer.from(durable),
            size: durable.length,
            durable,
            durableSize: durable.length,
          };
        }
        copies.set(inode, copy);
      }
      next.entries.set(p, copy);
      next.durableEntries.set(p, copy);
    }
    return next;
  }

  /** Flips one bit of a file's durable (and current) contents. */
  flipBit(filePath: string, offset: number, bit = 0): void {
    const inode = this.entries.get(filePath);
    if (!inode) throw new Error(`fault-storage: no file ${filePath}`);
    const mask = 1 << bit;
    if (offset < inode.size) inode.data[offset] = (inode.data[offset] as number) ^ mask;
    if (offset < inode.durableSize)
      inode.durable[offset] = (inode.durable[offset] as number) ^ mask;
  }

  /**
   * Zeroes [from, to) of a file, durable data included: a disk that loses what it said was
   * written (a volatile cache that lied about a flush, a bad sector at the end of a file).
   */
  zero(filePath: string, from: number, to: number): void {
    const inode = this.entries.get(filePath);
    if (!inode) throw new Error(`fault-storage: no file ${filePath}`);
    inode.data.fill(0, Math.min(from, inode.size), Math.min(to, inode.size));
    inode.durable.fill(0, Math.min(from, inode.durableSize), Math.min(to, inode.durableSize));
  }

  /** Current contents of a file (a copy). */
  contents(filePath: string): Buffer {
    const inode = this.entries.get(filePath);
    if (!inode) throw new Error(`fault-storage: no file ${filePath}`);
    return Buffer.from(inode.data.subarray(0, inode.size));
  }

  files(): string[] {
    return [...this.entries.keys()].sort();
  }

  async open(filePath: string, mode: OpenMode): Promise<StorageFile> {
    let inode = this.entries.get(filePath);
    if (mode === 'create') {
      this.check('create', filePath);
      if (inode) throw errno('EEXIST', 'open', filePath);
      if (!this.dirs.has(path.dirname(filePath))) throw errno('ENOENT', 'open', filePath);
      inode = { data: Buffer.alloc(0), size: 0, durable: Buffer.alloc(0), durableSize: 0 };
      this.entries.set(filePath, inode);
    } else if (!inode) {
      throw errno('ENOENT', 'open', filePath);
    }
    return new FaultFile(this, filePath, inode);
  }

  async readFile(filePath: string): Promise<Buffer> {
    return this.contents(filePath);
  }

  async list(dir: string): Promise<string[]> {
    if (!this.dirs.has(dir)) throw errno('ENOENT', 'list', dir);
    const names = [...this.entries.keys(), ...this.dirs].filter(
      (p) => path.dirname(p) === dir && p !== dir,
    );
    return names.map((p) => path.basename(p));
  }

  async exists(filePath: string): Promise<boolean> {
    return this.entries.has(filePath) || this.dirs.has(filePath);
  }

  async mkdir(dir: string): Promise<void> {
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) this.dirs.add(d);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check('rename', from);
    const inode = this.entries.get(from);
    if (!inode) throw errno('ENOENT', 'rename', from);
    this.entries.delete(from);
    this.entries.set(to, inode);
  }

  async unlink(filePath: string): Promise<void> {
    if (!this.entries.delete(filePath)) throw errno('ENOENT', 'unlink', filePath);
  }

  async syncDir(dir: string): Promise<void> {
    this.check('syncDir', dir);
    for (const p of [...this.durableEntries.keys()]) {
      if (path.dirname(p) === dir && !this.entries.has(p)) this.durableEntries.delete(p);
    }
    for (const [p, inode] of this.entries)
      if (path.dirname(p) === dir) this.durableEntries.set(p, inode);
  }
}
