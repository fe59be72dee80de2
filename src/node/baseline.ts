/**
 * The checkpoint-per-write comparison engine (`tally serve --engine baseline`).
 *
 * It exists to show what group commit buys, so it is a fair, competent implementation of the
 * classic design rather than a strawman: no WAL; one fixed table file updated in place with
 * one pwrite + one fdatasync per allocation; allocations strictly serialized in arrival order
 * behind a bounded queue. The file is preallocated with real zeros (not fallocate), so every
 * update overwrites an allocated block and fdatasync has no metadata to flush.
 *
 * On-disk format of `baseline.table` (all integers little-endian):
 *   header, headerBytes long: magic "TALLYBT1", u32 version, u32 recordBytes,
 *     u32 slotsMax, u8 nodeIdLength, node id bytes, zero padding.
 *   slot i at headerBytes + i * slotBytes: two copies of one namespace's record. Updates
 *     alternate between the copies, so a torn write can only damage the copy being written
 *     while the other still holds the last acknowledged value.
 *   record (recordBytes = 128, never straddles a 512-byte sector):
 *     0 u32 magic, 4 u32 CRC32C of bytes [8, 128), 8 u64 lastId, 16 u32 slot index,
 *     20 u8 name length, 21 name bytes (up to 64), zero padding.
 * Recovery reads the table: per slot, the valid copy with the higher lastId wins.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noBallot, type Ballot } from '../core/ballot';
import { assert } from '../core/assert';
import { systemClock, type Clock } from '../core/clock';
import { crc32c } from '../core/crc32c';
import {
  CounterExhaustedError,
  CorruptionError,
  DataDirError,
  DeadlineExceededError,
  NoSpaceError,
  OverloadedError,
  StorageFatalError,
  TallyError,
  UnavailableError,
  WrongRoleError,
  isErrno,
} from '../core/errors';
import {
  idMax,
  namespaceLengthMax,
  namespacePattern,
  namespacesMax,
  queuedRequestsMaxDefault,
} from '../core/limits';
import type { NodeOptions } from './node-options';
import {
  refuseReplication,
  type Channel,
  type ChannelEvents,
  type ToPrimary,
  type ToStandby,
} from '../replication/protocol';
import { validateAllocation } from '../state/counters';
import { lockDataDir, type DirLock } from './data-dir';
import type {
  AllocateCallback,
  CheckpointInfo,
  CounterNode,
  NodeState,
  NodeStatus,
  RoleState,
  PromoteResult,
} from './types';

/** The subset of the WAL engine's NodeOptions the baseline uses (serve passes NodeOptions). */
export type BaselineNodeOptions = Pick<
  NodeOptions,
  'id' | 'dataDir' | 'logger' | 'metrics' | 'queuedRequestsMax' | 'clock'
>;

export const baselineTableFileName = 'baseline.table';
const tableMagic = Buffer.from('TALLYBT1', 'latin1');
const tableVersion = 1;
const recordMagic = 0x4c534254; // "TBSL"
export const recordBytes = 128;
const copiesPerSlot = 2;
const slotBytes = recordBytes * copiesPerSlot;
const headerBytes = 4096;
const nodeIdBytesMax = 255;
const recordNameOffset = 21;
const tableBytes = headerBytes + namespacesMax * slotBytes;
const zeroRecord = Buffer.alloc(recordBytes);
assert(recordNameOffset + namespaceLengthMax <= recordBytes, 'baseline: record holds a name');

interface Slot {
  name: string;
  index: number;
  lastId: number;
  /** The copy (0 or 1) the next update overwrites: never the one holding lastId. */
  nextCopy: number;
}

interface Pending {
  namespace: string;
  count: number;
  deadlineUnixMs: number | undefined;
  cb: AllocateCallback;
}

function encodeRecord(buf: Buffer, slot: Slot, lastId: number): void {
  buf.fill(0);
  buf.writeUInt32LE(recordMagic, 0);
  buf.writeUInt32LE(lastId % 0x1_0000_0000, 8);
  buf.writeUInt32LE(Math.floor(lastId / 0x1_0000_0000), 12);
  buf.writeUInt32LE(slot.index, 16);
  const nameLength = buf.write(slot.name, recordNameOffset, 'latin1');
  buf.writeUInt8(nameLength, 20);
  buf.writeUInt32LE(crc32c(buf, 8, recordBytes), 4);
}

interface DecodedRecord {
  name: string;
  lastId: number;
}

/** A valid record, null for an all-zero (never written) one, 'bad' for anything else. */
function decodeRecord(
  buf: Buffer,
  offset: number,
  slotIndex: number,
): DecodedRecord | null | 'bad' {
  const rec = buf.subarray(offset, offset + recordBytes);
  if (rec.equals(zeroRecord)) return null;
  if (rec.readUInt32LE(0) !== recordMagic) return 'bad';
  if (rec.readUInt32LE(4) !== crc32c(rec, 8, recordBytes)) return 'bad';
  const lastId = rec.readUInt32LE(8) + rec.readUInt32LE(12) * 0x1_0000_0000;
  const nameLength = rec.readUInt8(20);
  const name = rec.toString('latin1', recordNameOffset, recordNameOffset + nameLength);
  if (rec.readUInt32LE(16) !== slotIndex || lastId > idMax || !namespacePattern.test(name)) {
    return 'bad';
  }
  return { name, lastId };
}

function encodeHeader(nodeId: string): Buffer {
  const header = Buffer.alloc(headerBytes);
  tableMagic.copy(header, 0);
  header.writeUInt32LE(tableVersion, 8);
  header.writeUInt32LE(recordBytes, 12);
  header.writeUInt32LE(namespacesMax, 16);
  const idLength = header.write(nodeId, 21, nodeIdBytesMax, 'utf8');
  header.writeUInt8(idLength, 20);
  return header;
}

function checkHeader(file: string, table: Buffer, nodeId: string): void {
  if (table.length !== tableBytes || !table.subarray(0, 8).equals(tableMagic)) {
    throw new DataDirError(`baseline: ${file} is not a baseline table (bad magic or size)`);
  }
  const version = table.readUInt32LE(8);
  if (version !== tableVersion || table.readUInt32LE(12) !== recordBytes) {
    throw new DataDirError(`baseline: ${file} has unsupported version ${version}`);
  }
  if (table.readUInt32LE(16) !== namespacesMax) {
    throw new DataDirError(`baseline: ${file} was made for a different namespace limit`);
  }
  const storedId = table.toString('utf8', 21, 21 + table.readUInt8(20));
  if (storedId !== nodeId) {
    throw new DataDirError(`baseline: ${file} belongs to node ${storedId}, not ${nodeId}`);
  }
}

/** Parses every slot; returns the namespaces in slot order. */
function loadSlots(file: string, table: Buffer): Slot[] {
  const slots: Slot[] = [];
  for (let index = 0; index < namespacesMax; index++) {
    const base = headerBytes + index * slotBytes;
    const a = decodeRecord(table, base, index);
    const b = decodeRecord(table, base + recordBytes, index);
    if (a === 'bad' && b === 'bad') {
      throw new CorruptionError(
        `baseline: both copies of slot ${index} in ${file} at offset ${base} are corrupt`,
      );
    }
    // One bad copy is the torn write of an update that was never acknowledged.
    const valid = [a, b].map((r) => (r === 'bad' ? null : r));
    const [ra, rb] = valid as [DecodedRecord | null, DecodedRecord | null];
    // Both empty, or a torn first write that was never acknowledged: the slot is free.
    if (ra === null && rb === null) continue;
    if (slots.length !== index) {
      throw new CorruptionError(
        `baseline: slot ${index} in ${file} at offset ${base} follows an empty slot`,
      );
    }
    if (ra !== null && rb !== null && ra.name !== rb.name) {
      throw new CorruptionError(
        `baseline: slot ${index} in ${file} at offset ${base} names two namespaces`,
      );
    }
    const newest = rb === null || (ra !== null && ra.lastId >= rb.lastId) ? 0 : 1;
    const rec = (newest === 0 ? ra : rb) as DecodedRecord;
    slots.push({ name: rec.name, index, lastId: rec.lastId, nextCopy: 1 - newest });
  }
  return slots;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens the table, creating and preallocating it on first use. Returns the fd and contents. */
function openTable(dataDir: string, nodeId: string): { fd: number; table: Buffer } {
  const file = path.join(dataDir, baselineTableFileName);
  if (!fs.existsSync(file)) {
    for (const foreign of ['wal', 'snapshot', 'meta']) {
      if (fs.existsSync(path.join(dataDir, foreign))) {
        throw new DataDirError(`baseline: ${dataDir} holds a WAL engine's data (${foreign})`);
      }
    }
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, encodeHeader(nodeId), 0, headerBytes, 0);
    fs.writeSync(
      fd,
      Buffer.alloc(tableBytes - headerBytes),
      0,
      tableBytes - headerBytes,
      headerBytes,
    );
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
    fsyncDir(dataDir);
  }
  const fd = fs.openSync(file, 'r+');
  try {
    const table = Buffer.alloc(tableBytes);
    const size = fs.fstatSync(fd).size;
    if (size !== tableBytes)
      throw new DataDirError(`baseline: ${file} has size ${size}, want ${tableBytes}`);
    const read = fs.readSync(fd, table, 0, tableBytes, 0);
    assert(read === tableBytes, 'baseline: short read of the table');
    checkHeader(file, table, nodeId);
    return { fd, table };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

class BaselineNode implements CounterNode {
  readonly failed: Promise<Error>;
  private failNode!: (err: Error) => void;
  private state: NodeState = 'serving';
  private readonly queue: Pending[] = [];
  private queueHead = 0;
  private writing = false;
  private writeCount = 0;
  private readonly record = Buffer.alloc(recordBytes);
  private readonly slotsByName = new Map<string, Slot>();
  private drained: (() => void) | null = null;

  private readonly clock: Clock;

  constructor(
    private readonly opts: BaselineNodeOptions,
    private readonly fd: number,
    private readonly lock: DirLock,
    slots: Slot[],
    private readonly queuedRequestsMax: number,
  ) {
    for (const slot of slots) this.slotsByName.set(slot.name, slot);
    this.clock = opts.clock ?? systemClock;
    this.failed = new Promise((resolve) => (this.failNode = resolve));
  }

  allocate(
    namespace: string,
    count: number,
    deadlineUnixMs: number | undefined,
    cb: AllocateCallback,
  ): void {
    try {
      validateAllocation(namespace, count); // the same checks as the WAL engine
    } catch (err) {
      return cb(err as TallyError);
    }
    if (this.state !== 'serving')
      return cb(new UnavailableError(`baseline: node is ${this.state}`));
    if (this.queue.length - this.queueHead >= this.queuedRequestsMax) {
      return cb(new OverloadedError(`baseline: ${this.queuedRequestsMax} requests already queued`));
    }
    this.queue.push({ namespace, count, deadlineUnixMs, cb });
    this.opts.metrics.queuedRequests.set(this.queue.length - this.queueHead);
    if (!this.writing) this.writeNext();
  }

  private dequeue(): Pending | undefined {
    const next = this.queue[this.queueHead];
    if (next === undefined) return undefined;
    this.queue[this.queueHead] = undefined as unknown as Pending;
    this.queueHead++;
    if (this.queueHead === this.queue.length || this.queueHead > 4096) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    this.opts.metrics.queuedRequests.set(this.queue.length - this.queueHead);
    return next;
  }

  /** Takes the next request and performs its pwrite + fdatasync; exactly one at a time. */
  private writeNext(): void {
    for (;;) {
      const req = this.dequeue();
      if (req === undefined) {
        this.writing = false;
        this.drained?.();
        return;
      }
      const rejection = this.admit(req);
      if (rejection !== null) {
        req.cb(rejection);
        continue;
      }
      this.writing = true;
      this.writeOne(req);
      return;
    }
  }

  private admit(req: Pending): TallyError | null {
    if (this.state === 'failed') return new UnavailableError('baseline: node failed');
    if (req.deadlineUnixMs !== undefined && this.clock.nowUnixMs() > req.deadlineUnixMs) {
      return new DeadlineExceededError('baseline: deadline passed while queued');
    }
    const slot = this.slotsByName.get(req.namespace);
    const lastId = slot?.lastId ?? 0;
    if (lastId + req.count > idMax) {
      return new CounterExhaustedError(`baseline: namespace ${req.namespace} would pass ${idMax}`);
    }
    if (slot === undefined && this.slotsByName.size >= namespacesMax) {
      return new OverloadedError(`baseline: already ${namespacesMax} namespaces`);
    }
    return null;
  }

  private writeOne(req: Pending): void {
    const existing = this.slotsByName.get(req.namespace);
    const slot = existing ?? {
      name: req.namespace,
      index: this.slotsByName.size,
      lastId: 0,
      nextCopy: 0,
    };
    const newLastId = slot.lastId + req.count;
    encodeRecord(this.record, slot, newLastId);
    const position = headerBytes + slot.index * slotBytes + slot.nextCopy * recordBytes;
    const startMs = this.clock.monotonicMs();
    fs.write(this.fd, this.record, 0, recordBytes, position, (writeErr, written) => {
      if (writeErr !== null) return this.storageError(req, writeErr);
      assert(written === recordBytes, 'baseline: short pwrite');
      fs.fdatasync(this.fd, (syncErr) => {
        if (syncErr !== null) return this.storageError(req, syncErr);
        this.opts.metrics.fsyncDurationSeconds.observe((this.clock.monotonicMs() - startMs) / 1000);
        this.opts.metrics.batchRecords.observe(1);
        // Durable: only now does the namespace exist and the counter move.
        if (existing === undefined) this.slotsByName.set(slot.name, slot);
        const first = slot.lastId + 1;
        slot.lastId = newLastId;
        slot.nextCopy = 1 - slot.nextCopy;
        this.writeCount++;
        const result = { first, count: req.count, epoch: 0, index: this.writeCount };
        // Start the next write before replying, so sending the reply overlaps the disk.
        this.writeNext();
        req.cb(null, result);
      });
    });
  }

  /**
   * ENOSPC on an in-place overwrite leaves the other copy intact: refuse this request and go
   * on (the next update retries the same copy). Anything else is fatal.
   */
  private storageError(req: Pending, err: Error): void {
    if (isErrno(err, 'ENOSPC')) {
      req.cb(new NoSpaceError('baseline: disk full writing the table', { cause: err }));
      return this.writeNext();
    }
    const fatal = new StorageFatalError(
      `baseline: write or fdatasync of the table failed: ${err.message}`,
      {
        cause: err,
      },
    );
    this.opts.logger.fatal({ err }, 'baseline: storage failure, node stops');
    this.state = 'failed';
    req.cb(fatal);
    this.failNode(fatal);
    this.writeNext();
  }

  roleState(): RoleState {
    return { role: 'standalone', state: this.state, epoch: 0 };
  }

  status(): NodeStatus {
    const namespaces = [...this.slotsByName.values()]
      .map((s) => ({ name: s.name, lastId: s.lastId }))
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return {
      nodeId: this.opts.id,
      role: 'standalone',
      state: this.state,
      epoch: 0,
      lastIndex: this.writeCount,
      namespaces,
      walBytes: 0,
      walSegments: 0,
      checkpointIndex: this.writeCount,
      checkpointUnixMs: 0,
      dataDir: this.opts.dataDir,
      epochPrimary: this.opts.id,
      replication: null,
      incarnation: '',
      clusterId: '',
      lastEpoch: 0,
      acknowledgedIndex: this.writeCount,
      acknowledgedEpoch: 0,
      writeStallMs: 0,
      idFloor: 0,
      clientAddress: '',
      promotingEpoch: 0,
      tailCut: false,
      ballot: noBallot,
    };
  }

  noteInSyncSet(): void {
    // never a primary with a standby
  }

  openReplication(channel: Channel<ToPrimary>): ChannelEvents<ToStandby> {
    return refuseReplication(channel, new WrongRoleError('baseline: not a standby'));
  }

  storeBallot(): Promise<Ballot> {
    return Promise.reject(new WrongRoleError('baseline: a baseline node has no controller'));
  }

  promote(): Promise<PromoteResult> {
    return Promise.reject(
      new WrongRoleError('baseline: a standalone comparison engine has no roles'),
    );
  }

  rejoinAsStandby(): Promise<void> {
    return Promise.resolve(); // never a primary
  }

  stepDown(): Promise<{ epoch: number; lastIndex: number }> {
    return Promise.reject(
      new WrongRoleError('baseline: a standalone comparison engine has no roles'),
    );
  }

  /** The table is always a complete checkpoint: nothing to write, nothing to compact. */
  checkpoint(): Promise<CheckpointInfo> {
    return Promise.resolve({ index: this.writeCount, segmentsRemoved: 0, durationUs: 0 });
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state !== 'failed') this.state = 'draining';
    if (this.writing) await new Promise<void>((resolve) => (this.drained = resolve));
    this.state = 'closed';
    fs.closeSync(this.fd);
    this.lock.close();
    this.opts.logger.info({ allocations: this.writeCount }, 'baseline: closed');
  }
}

export async function openBaselineNode(opts: BaselineNodeOptions): Promise<CounterNode> {
  const clock = opts.clock ?? systemClock;
  const startMs = clock.monotonicMs();
  // Creates the dir; the same lock as the WAL engine. The table file is ours, not foreign.
  const lock = lockDataDir(opts.dataDir, [baselineTableFileName]);
  try {
    const { fd, table } = openTable(opts.dataDir, opts.id);
    let slots: Slot[];
    try {
      slots = loadSlots(path.join(opts.dataDir, baselineTableFileName), table);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    const durationS = (clock.monotonicMs() - startMs) / 1000;
    opts.metrics.recoveryDurationSeconds.set(durationS);
    opts.metrics.recoveryRecords.set(slots.length);
    opts.logger.info(
      { namespaces: slots.length, durationMs: Math.round(durationS * 1000) },
      'baseline: table loaded (checkpoint-per-write engine, no WAL)',
    );
    const queuedMax = opts.queuedRequestsMax ?? queuedRequestsMaxDefault;
    return new BaselineNode(opts, fd, lock, slots, queuedMax);
  } catch (err) {
    lock.close();
    throw err;
  }
}
