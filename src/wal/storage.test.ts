import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FaultStorage } from '../testing/fault-storage';
import { NodeStorage } from './storage';

const file = '/d/f';

async function freshFile(size = 64): Promise<FaultStorage> {
  const storage = new FaultStorage();
  await storage.mkdir('/d');
  const f = await storage.open(file, 'create');
  await f.write(Buffer.alloc(size), 0, size, 0);
  await f.datasync();
  await f.close();
  await storage.syncDir('/d');
  return storage;
}

const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('FaultStorage writeDurable (O_DSYNC model)', () => {
  it('keeps the bytes across a crash once it resolved, while an earlier plain write is still lost', async () => {
    const storage = await freshFile();
    const f = await storage.open(file, 'readwrite');
    await f.write(bytes(8, 1), 0, 8, 0); // never synced
    await f.writeDurable(bytes(8, 2), 0, 8, 16);
    await f.writeDurable(bytes(8, 3), 0, 8, 60); // extends the file
    const after = storage.crash().contents(file);
    expect(after.length).toBe(68);
    expect(after.subarray(0, 8)).toEqual(bytes(8, 0));
    expect(after.subarray(16, 24)).toEqual(bytes(8, 2));
    expect(after.subarray(60, 68)).toEqual(bytes(8, 3));
  });

  it('a crash while it is pending may drop the write or tear it at any byte', async () => {
    const storage = await freshFile();
    const f = await storage.open(file, 'readwrite');
    let images: FaultStorage[] = [];
    // The 'datasync' op of writeDurable: the bytes are issued, not yet durable.
    storage.onOp = (op) => {
      if (op !== 'datasync') return;
      images = [storage.crash(), storage.crash({ tearLastWriteAt: 3 })];
    };
    await f.writeDurable(bytes(8, 7), 0, 8, 16);
    expect(images).toHaveLength(2);
    const [dropped, torn] = images.map((image) => image.contents(file));
    expect(dropped?.subarray(16, 24)).toEqual(bytes(8, 0));
    expect(torn?.subarray(16, 24)).toEqual(Buffer.from([7, 7, 7, 0, 0, 0, 0, 0]));
  });

  it('a write fault fails it with nothing written; a datasync fault leaves it written but not durable', async () => {
    const storage = await freshFile();
    const f = await storage.open(file, 'readwrite');
    storage.failOn('write', 'EIO', /.*/, 1);
    await expect(f.writeDurable(bytes(8, 5), 0, 8, 0)).rejects.toMatchObject({ code: 'EIO' });
    expect(storage.contents(file).subarray(0, 8)).toEqual(bytes(8, 0));
    storage.failOn('datasync', 'ENOSPC', /.*/, 1);
    await expect(f.writeDurable(bytes(8, 6), 0, 8, 0)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(storage.contents(file).subarray(0, 8)).toEqual(bytes(8, 6));
    expect(storage.crash().contents(file).subarray(0, 8)).toEqual(bytes(8, 0));
  });

  it('tearing an older pending write it overlaps never brings back what it replaced durably', async () => {
    const storage = await freshFile();
    const f = await storage.open(file, 'readwrite');
    await f.write(bytes(16, 1), 0, 16, 0); // pending
    await f.writeDurable(bytes(8, 2), 0, 8, 4);
    // The older write is now the newest pending one: torn whole, it carries the page's bytes.
    const after = storage.crash({ tearLastWriteAt: 16 }).contents(file);
    expect(after.subarray(0, 16)).toEqual(Buffer.concat([bytes(4, 1), bytes(8, 2), bytes(4, 1)]));
  });
});

describe('NodeStorage writeDurable', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });
  /** The open flags of each descriptor this process holds on `target`. */
  const fdFlagsOn = (target: string): number[] =>
    fs.readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`) !== target) return [];
        const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
        return [parseInt(/^flags:\s+([0-7]+)$/m.exec(info)?.[1] ?? '', 8)];
      } catch {
        return []; // closed meanwhile (the readdir's own descriptor)
      }
    });
  const dsync = (flags: number) => (flags & fs.constants.O_DSYNC) !== 0;

  it.runIf(fs.existsSync('/proc/self/fdinfo'))(
    'writes through a second (O_DSYNC) descriptor opened with a writable file and released by close()',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-storage-'));
      dirs.push(dir);
      const target = path.join(fs.realpathSync(dir), 'seg');
      fs.writeFileSync(target, Buffer.alloc(4096));
      const storage = new NodeStorage();
      const f = await storage.open(target, 'readwrite');
      expect(fdFlagsOn(target).map(dsync).sort()).toEqual([false, true]);
      await Promise.all([
        f.writeDurable(bytes(100, 9), 0, 100, 0),
        f.writeDurable(bytes(50, 8), 10, 40, 200),
      ]);
      // Still just those two: writes open nothing.
      expect(fdFlagsOn(target).map(dsync).sort()).toEqual([false, true]);
      const back = Buffer.alloc(240);
      expect(await f.read(back, 0, 240, 0)).toBe(240);
      expect(back.subarray(0, 100)).toEqual(bytes(100, 9));
      expect(back.subarray(200, 240)).toEqual(bytes(40, 8));
      await f.close();
      expect(fdFlagsOn(target)).toEqual([]);
      const readOnly = await storage.open(target, 'read');
      expect(fdFlagsOn(target).map(dsync)).toEqual([false]);
      await expect(readOnly.writeDurable(bytes(1, 1), 0, 1, 0)).rejects.toThrow(/read-only/);
      await readOnly.close();
    },
  );
});
