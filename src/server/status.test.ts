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
  NotPrimaryError,
  OverloadedError,
  ReplicationAbortedError,
  StaleEpochError,
  StorageFatalError,
  type TallyError,
  UnavailableError,
} from '../core/errors';
import {
  errorNameKey,
  internalErrorMessage,
  primaryAddressKey,
  statusName,
  toGrpcError,
} from './status';

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
  [new StaleEpochError('node: epoch 3 is stale'), GrpcStatus.FAILED_PRECONDITION],
  [new ReplicationAbortedError('replication: gap'), GrpcStatus.ABORTED],
];

describe('toGrpcError', () => {
  it.each(cases)('maps %s to its gRPC status and keeps the message', (err, code) => {
    const { logger, lines } = capturingLogger();
    const mapped = toGrpcError(err, logger);
    expect({ code: mapped.code, details: mapped.details }).toEqual({ code, details: err.message });
    expect(mapped.metadata?.get(errorNameKey)).toEqual([err.name]);
    expect(lines).toEqual([]);
  });

  it("puts a standby's primary hint in metadata and in the mapped error", () => {
    const { logger } = capturingLogger();
    const mapped = toGrpcError(new NotPrimaryError('node: standby', '10.0.0.1:7400'), logger);
    expect(mapped.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(mapped.metadata?.get(primaryAddressKey)).toEqual(['10.0.0.1:7400']);
    expect(mapped.primaryAddress).toBe('10.0.0.1:7400');
    const unknown = toGrpcError(new NotPrimaryError('node: standby'), logger);
    expect(unknown.metadata?.get(primaryAddressKey)).toEqual([]);
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
