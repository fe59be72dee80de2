/**
 * What both ends of the wire agree on, in one module the client library and the server both
 * import: metadata keys, status names, where the protos are and how they are loaded. It loads
 * no server, node or storage code, so importing the client stays light.
 */
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Options as LoaderOptions } from '@grpc/proto-loader';

/** Response metadata: the primary's address on FAILED_PRECONDITION from a standby. */
export const primaryAddressKey = 'tally-primary';
/** Response metadata: the TallyError class name (replication peers act on it). */
export const errorNameKey = 'tally-error';

/** Canonical status name (`INVALID_ARGUMENT`) for metric labels and messages. */
export function statusName(code: number): string {
  return GrpcStatus[code] ?? `CODE_${code}`;
}

/**
 * The package root's proto/: `../../proto` from both src/core and dist/core, so tests (ts)
 * and the built package (js) load the same files.
 */
export const protoDir = path.join(__dirname, '..', '..', 'proto');

/** Options matching `npm run gen:types`, so the generated types describe what is loaded. */
export const loaderOptions: LoaderOptions = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoDir],
};
