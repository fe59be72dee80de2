declare module 'fs-native-extensions' {
  /** fcntl/OFD exclusive lock on an open fd; false if another process holds it. */
  export function tryLock(fd: number, options?: { shared?: boolean }): boolean;
  export function unlock(fd: number): void;
}
