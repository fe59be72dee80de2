/**
 * A PrimaryResolver that asks the failover controller (tally.v1.Controller/GetConfig) where
 * the primary is: the address the primary advertises to clients, else the one the controller
 * reaches it by. controller.proto is loaded on first use, with proto-loader only: the client
 * package loads no server code.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { systemClock, type Clock } from '../core/clock';
import { loaderOptions } from '../core/wire';
import type { PrimaryResolver } from './primary-finder';

interface NodeRef {
  address?: string;
  clientAddress?: string;
}

export interface ControllerResolver extends PrimaryResolver {
  /** Closes the channel to the controller. */
  close(): void;
}

/** How long one GetConfig may take before the resolver gives up (the client keeps rotating). */
const getConfigMs = 1000;

export function controllerResolver(
  controllerAddress: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  /** The GetConfig deadline's clock (the call itself is gRPC: real sockets, real time). */
  clock: Clock = systemClock,
): ControllerResolver {
  const definition = protoLoader.loadSync('tally/v1/controller.proto', loaderOptions);
  const service = definition['tally.v1.Controller'] as protoLoader.ServiceDefinition;
  const getConfig = service.GetConfig as protoLoader.MethodDefinition<object, object>;
  const client = new grpc.Client(controllerAddress, credentials);
  const resolve = (): Promise<string | undefined> =>
    new Promise((done) => {
      client.makeUnaryRequest(
        '/tally.v1.Controller/GetConfig',
        getConfig.requestSerialize,
        getConfig.responseDeserialize,
        {},
        { deadline: clock.nowUnixMs() + getConfigMs },
        (err, reply) => {
          const config = reply as { primary?: NodeRef; promoting?: boolean } | undefined;
          const primary = err === null ? config?.primary : undefined;
          if (primary === undefined || config?.promoting === true) done(undefined);
          else done(primary.clientAddress || primary.address || undefined);
        },
      );
    });
  return Object.assign(resolve, { close: () => client.close() });
}
