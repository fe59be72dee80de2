/** HTTP/2 frames (RFC 9113): the constants and writers the frame-level Counter server uses. */

export const frameHeaderLength = 9;
export const connectionPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** SETTINGS_MAX_FRAME_SIZE we accept (the protocol default: we never raise it). */
export const maxFrameSize = 16_384;
export const defaultWindow = 65_535;
export const windowMax = 2 ** 31 - 1;

export const frameType = {
  data: 0,
  headers: 1,
  priority: 2,
  rstStream: 3,
  settings: 4,
  pushPromise: 5,
  ping: 6,
  goaway: 7,
  windowUpdate: 8,
  continuation: 9,
} as const;

export const flag = {
  endStream: 0x1,
  ack: 0x1,
  endHeaders: 0x4,
  padded: 0x8,
  priority: 0x20,
} as const;

export const errorCode = {
  noError: 0,
  protocol: 1,
  internal: 2,
  flowControl: 3,
  streamClosed: 5,
  frameSize: 6,
  refusedStream: 7,
  cancel: 8,
  compression: 9,
  enhanceYourCalm: 11,
} as const;

export const setting = {
  headerTableSize: 1,
  enablePush: 2,
  maxConcurrentStreams: 3,
  initialWindowSize: 4,
  maxFrameSize: 5,
  maxHeaderListSize: 6,
} as const;

/** Writes a frame header at buf[at]; returns the payload's start. */
export function writeFrameHeader(
  buf: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): number {
  buf[at] = (length >>> 16) & 0xff;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId & 0x7fffffff, at + 5);
  return at + frameHeaderLength;
}

/** A whole frame with `payload`, as a new buffer (control frames: not the hot path). */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const buf = Buffer.allocUnsafe(frameHeaderLength + length);
  writeFrameHeader(buf, 0, length, type, flags, streamId);
  payload?.copy(buf, frameHeaderLength);
  return buf;
}

export function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  return frame(
    frameType.goaway,
    0,
    0,
    Buffer.concat([u32(lastStreamId), u32(code), Buffer.from(debug, 'utf8')]),
  );
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  return frame(frameType.rstStream, 0, streamId, u32(code));
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  return frame(frameType.windowUpdate, 0, streamId, u32(increment));
}
