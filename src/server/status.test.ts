import { status as GrpcStatus } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  CorruptionError,
  CounterExhaustedError,
  DataDirError,
  DeadlineExceededError,
  InvalidArgumentError,
  NoSpaceError,
  OverloadedError,
  StorageFatalError,
  type TallyError,
  UnavailableError,
} from '../core/errors';
import { internalErrorMessage, statusName, toGrpcError } from './status';

function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { logger, lines };
}

const cases: Array<[TallyError, GrpcStatus]> = [
  [new InvalidArgumentError('state: bad namespace'), GrpcStatus.INVALID_ARGUMENT],
  [new CounterExhaustedError('state: counter exhausted'), GrpcStatus.OUT_OF_RANGE],
  [new OverloadedError('node: queue full'), GrpcStatus.RESOURCE_EXHAUSTED],
  [new NoSpaceError('wal: ENOSPC'), GrpcStatus.RESOURCE_EXHAUSTED],
  [new UnavailableError('node: draining'), GrpcStatus.UNAVAILABLE],
  [new DeadlineExceededError('node: deadline'), GrpcStatus.DEADLINE_EXCEEDED],
  [new CorruptionError('wal: crc mismatch'), GrpcStatus.DATA_LOSS],
  [new DataDirError('data-dir: locked'), GrpcStatus.FAILED_PRECONDITION],
  [new StorageFatalError('wal: fsync failed'), GrpcStatus.INTERNAL],
];

describe('toGrpcError', () => {
  it.each(cases)('maps %s to its gRPC status and keeps the message', (err, code) => {
    const { logger, lines } = capturingLogger();
    expect(toGrpcError(err, logger)).toEqual({ code, details: err.message });
    expect(lines).toEqual([]);
  });

  it('reports an unknown error as INTERNAL with a generic message and logs the details', () => {
    const { logger, lines } = capturingLogger();
    const mapped = toGrpcError(new TypeError('secret path /etc/x is broken'), logger);
    expect(mapped).toEqual({ code: GrpcStatus.INTERNAL, details: internalErrorMessage });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('secret path /etc/x is broken');
  });

  it('reports thrown non-errors and null as INTERNAL', () => {
    const { logger } = capturingLogger();
    expect(toGrpcError('boom', logger).code).toBe(GrpcStatus.INTERNAL);
    expect(toGrpcError(null, logger).code).toBe(GrpcStatus.INTERNAL);
  });

  it('treats a TallyError with an unknown kind as INTERNAL rather than passing it through', () => {
    const { logger, lines } = capturingLogger();
    const odd = Object.assign(new InvalidArgumentError('odd'), { kind: 'nonsense' });
    expect(toGrpcError(odd, logger)).toEqual({
      code: GrpcStatus.INTERNAL,
      details: internalErrorMessage,
    });
    expect(lines).toHaveLength(1);
  });
});

describe('statusName', () => {
  it('gives canonical names for metric labels and CLI messages', () => {
    expect(statusName(GrpcStatus.OK)).toBe('OK');
    expect(statusName(GrpcStatus.INVALID_ARGUMENT)).toBe('INVALID_ARGUMENT');
    expect(statusName(GrpcStatus.DATA_LOSS)).toBe('DATA_LOSS');
    expect(statusName(99)).toBe('CODE_99');
  });
});
