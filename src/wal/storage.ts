/**
 * The disk, behind a small interface so tests and the simulator can drop un-fsynced writes,
 * tear the last write, flip bits and fail with ENOSPC (src/testing/fault-storage.ts).
 * Paths are plain strings; directories are made durable only by syncDir().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface StorageFile {
  readonly path: string;
  /** Writes all `length` bytes at `position` (loops over short writes). */
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<void>;
  /**
   * Like write(), but the bytes are durable when it resolves: the guarantee of write() +
   * datasync() in one call (O_DSYNC), cheaper on the hot path. Only these bytes: earlier
   * write()s still need a datasync(). A failure leaves the range's durable state unknown.
   */
  writeDurable(buf: Uint8Array, offset: number, length: number, position: number): Promise<void>;
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  datasync(): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export type OpenMode = 'read' | 'readwrite' | 'create';

export interface Storage {
  /** 'create' fails if the file exists (O_EXCL); 'readwrite' requires it to exist. */
  open(filePath: string, mode: OpenMode): Promise<StorageFile>;
  readFile(filePath: string): Promise<Buffer>;
  list(dir: string): Promise<string[]>;
  exists(filePath: string): Promise<boolean>;
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(filePath: string): Promise<void>;
  /** fsync a directory so that creates, renames and unlinks in it survive a crash. */
  syncDir(dir: string): Promise<void>;
}

const openFlags: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  readwrite: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
};

/** Writes all `length` bytes at `position` on `fd`, looping over short writes. */
function writeAll(
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (off: number, len: number, pos: number): void => {
      fs.write(fd, buf, off, len, pos, (err, written) => {
        if (err) return reject(err);
        if (written === len) return resolve();
        step(off + written, len - written, pos + written);
      });
    };
    step(offset, length, position);
  });
}

/** Each write on a descriptor with it returns once its data is on stable storage (Linux, macOS). */
const dsyncFlag = fs.constants.O_DSYNC;

function openFd(filePath: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(filePath, flags, 0o644, (err, fd) => (err ? reject(err) : resolve(fd))),
  );
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/** Callback-based fs calls wrapped once per batch, not per request. */
class NodeFile implements StorageFile {
  /**
   * @param dsyncFd the same file opened O_WRONLY | O_DSYNC, behind writeDurable(); null when
   *   the file was opened read-only. Opened with the file, so a hot-path write never opens.
   */
  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly dsyncFd: number | null,
  ) {}

  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    return writeAll(this.fd, buf, offset, length, position);
  }

  writeDurable(buf: Uint8Array, offset: number, length: number, position: number): Promise<void> {
    if (this.dsyncFd === null) {
      return Promise.reject(new Error(`storage: writeDurable on ${this.path}, opened read-only`));
    }
    return writeAll(this.dsyncFd, buf, offset, length, position);
  }

  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return new Promise((resolve, reject) => {
      fs.read(this.fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  }

  datasync(): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())),
    );
  }

  size(): Promise<number> {
    return new Promise((resolve, reject) =>
      fs.fstat(this.fd, (err, st) => (err ? reject(err) : resolve(st.size))),
    );
  }

  /** Closes both descriptors; the first error wins. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([
      closeFd(this.fd),
      this.dsyncFd === null ? undefined : closeFd(this.dsyncFd),
    ]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}

export class NodeStorage implements Storage {
  async open(filePath: string, mode: OpenMode): Promise<StorageFile> {
    const fd = await openFd(filePath, openFlags[mode]);
    if (mode === 'read') return new NodeFile(filePath, fd, null);
    try {
      // After the first open, so 'create' has made the file and O_EXCL applied.
      return new NodeFile(filePath, fd, await openFd(filePath, fs.constants.O_WRONLY | dsyncFlag));
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
  }

  readFile(filePath: string): Promise<Buffer> {
    return fs.promises.readFile(filePath);
  }

  list(dir: string): Promise<string[]> {
    return fs.promises.readdir(dir);
  }

  async exists(filePath: string): Promise<boolean> {
    try {
      await fs.promises.access(filePath);
      return true;
    } catch {
      return false;
    }
  }

  async mkdir(dir: string): Promise<void> {
    await fs.promises.mkdir(dir, { recursive: true });
  }

  rename(from: string, to: string): Promise<void> {
    return fs.promises.rename(from, to);
  }

  unlink(filePath: string): Promise<void> {
    return fs.promises.unlink(filePath);
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await fs.promises.open(path.resolve(dir), fs.constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** Write a small file atomically: temp → fsync → rename → directory fsync. */
export async function writeFileAtomic(
  storage: Storage,
  filePath: string,
  data: Uint8Array,
): Promise<void> {
  const tmp = `${filePath}.tmp`;
  if (await storage.exists(tmp)) await storage.unlink(tmp);
  const file = await storage.open(tmp, 'create');
  try {
    await file.write(data, 0, data.length, 0);
    await file.datasync();
  } finally {
    await file.close();
  }
  await storage.rename(tmp, filePath);
  await storage.syncDir(path.dirname(filePath));
}
