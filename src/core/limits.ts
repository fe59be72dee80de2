/**
 * Every bound in one place. A queue, batch or buffer without a named maximum is a bug.
 */

/** The highest ID a counter may hand out: 2^53-1, so IDs are exact JavaScript numbers. */
export const idMax = Number.MAX_SAFE_INTEGER;
/** The most IDs one request may allocate. */
export const countMax = 10_000;
/** Namespace names: 1..namespaceLengthMax characters of [a-z0-9._-]. */
export const namespaceLengthMax = 64;
export const namespacePattern = /^[a-z0-9._-]{1,64}$/;
/** How many distinct namespaces a node holds. */
export const namespacesMax = 10_000;

/** Default WAL segment size (each segment is preallocated to this size). */
export const segmentSizeBytesDefault = 64 * 1024 * 1024;
/** Smallest allowed segment size (tests use small ones). */
export const segmentSizeBytesMin = 4096;
/** Largest allowed segment size: recovery reads one whole segment into memory at a time. */
export const segmentSizeBytesMax = 1024 * 1024 * 1024;

/** Requests in one group-commit batch. */
export const batchRecordsMax = 4096;
/** Requests waiting for a batch; more than this is overload (RESOURCE_EXHAUSTED). */
export const queuedRequestsMaxDefault = 50_000;

/** Take a checkpoint automatically after this many records or WAL bytes. */
export const checkpointRecordsDefault = 500_000;
export const checkpointBytesDefault = 128 * 1024 * 1024;

/** The largest snapshot file accepted on load. */
export const snapshotBytesMax = 64 * 1024 * 1024;

/** Largest Counter request a node accepts: requests are a namespace and a count. */
export const receiveMessageBytesMax = 64 * 1024;
/** Requests of one AllocateStream handed to the node and unanswered; reading pauses above it. */
export const streamInFlightMax = 1024;
/** Response bytes of one stream buffered for a slow reader; reading pauses above it. */
export const streamPendingWriteBytesMax = 256 * 1024;

/** Largest replication message (records of one Append, or one InstallSnapshot). */
export const replicationMessageBytesMax = 4 * 1024 * 1024;
/** Record bytes per catch-up Append read from the WAL. */
export const catchUpChunkBytes = 256 * 1024;
/** Catch-up Appends sent and not yet acknowledged; the sender waits above it. */
export const catchUpInFlightMax = 8;
/** How long a primary holds a request for the standby's ack by default (`--standby-wait-ms`). */
export const standbyWaitMsDefault = 10_000;
/** Group-commit batches written locally and waiting for the standby's ack (pipelining bound). */
export const replicationBatchesInFlightMax = 4;
/** Messages a standby has received and not yet processed; more ends the session. */
export const receiverQueueMax = 64;
/**
 * Epoch boundaries a standby reports in Hello, and a snapshot keeps for the records it replaced
 * (the most recent ones; one per failover, so this is years of them).
 */
export const helloEpochsMax = 1024;

/**
 * Client library: how long allocate() keeps trying by default, retries included: long enough
 * to ride out a node restart or an automatic failover (seconds), short enough that callers see
 * an outage; the same as the primary's default wait for its standby (standbyWaitMsDefault).
 */
export const clientDeadlineMsDefault = 10_000;
/** Client library: allocations one TallyClient holds at once (queued, in flight or backing off). */
export const clientPendingRequestsMax = 10_000;
/**
 * Client library: requests written on one AllocateStream and not yet answered. More would only
 * wait in the server's socket buffer: the server stops reading above streamInFlightMax.
 */
export const clientStreamInFlightMax = streamInFlightMax;
/**
 * Client library: FAILED_PRECONDITION redirects (to the primary a standby names, or to the next
 * address) one call follows at once; after that it backs off, so two nodes cannot ping-pong it.
 */
export const clientHintHopsMax = 4;
/**
 * Client library keepalive: a PING clientKeepaliveTimeMs after the last ack, also between
 * calls, and the connection dropped when one is unanswered for clientKeepaliveTimeoutMs. A node
 * gone silent (paused, partitioned: no reset ever comes) is abandoned 0.5–0.75 s after it went
 * silent instead of at the call's deadline; a node whose event loop stalls past 500 ms loses
 * its clients' connections, and they retry (a gap, never a reissue). Servers accept pings at
 * any rate.
 */
export const clientKeepaliveTimeMs = 250;
export const clientKeepaliveTimeoutMs = 500;
/**
 * Client library: a stream whose connection is not up within this ends UNAVAILABLE, and its
 * calls move on: a node that is cut off never answers the connect (the kernel keeps trying for
 * minutes, and grpc-js has no connect timeout), a paused one accepts it and never answers the
 * HTTP/2 handshake.
 */
export const clientConnectTimeoutMs = 1000;
/** IdBlockAllocator: the largest block it asks for (one request's countMax). */
export const blockSizeMax = countMax;
/** IdBlockAllocator: callers of next() waiting for a refill; more are refused. */
export const blockWaitersMax = 100_000;

/** Deadlines of the calls between controller and nodes (src/server/controller-client.ts). */
/** A node's call to the controller that takes longer is treated as the controller being unreachable. */
export const controllerCallMs = 2000;
/** A controller's status probe of a node that takes longer counts as a failed probe. */
export const probeCallMs = 400;
/** Promotion and step-down wait for disk writes and the standby: give them longer. */
export const roleChangeCallMs = 5000;
