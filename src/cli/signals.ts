/**
 * How `tally serve` and `tally controller` stop on a signal.
 */
import type { Logger } from '../server/logger';

/** What stdin's end does before installShutdown (a process still starting), if watched. */
let stdinEofWhileStarting: (() => void) | null = null;

/** TALLY_STOP_ON_STDIN_EOF=1: started by `cluster up`, which holds our stdin. */
function stopOnStdinEof(): boolean {
  return process.env.TALLY_STOP_ON_STDIN_EOF === '1';
}

/**
 * Called first thing by `serve` and `controller`: with TALLY_STOP_ON_STDIN_EOF=1, the end of
 * stdin while the process is still starting (recovering, waiting for the controller to place
 * it) ends it as a SIGTERM would then (no handler yet: the default action). Without this a
 * node waiting for a controller that is gone outlives a `cluster up` killed meanwhile.
 */
export function watchStdinWhileStarting(): void {
  if (!stopOnStdinEof() || stdinEofWhileStarting !== null) return;
  stdinEofWhileStarting = () => process.kill(process.pid, 'SIGTERM');
  process.stdin.on('end', stdinEofWhileStarting);
  process.stdin.on('error', stdinEofWhileStarting);
  process.stdin.resume();
}

/**
 * Graceful stop on SIGTERM or SIGINT: `stopAll`, then exit 0 (1 if it failed). Repeating the same signal (Ctrl-C twice, a
 * supervisor's second SIGTERM) exits at once; the other signal during a stop is ignored
 * (a terminal's Ctrl-C reaches a whole process group as SIGINT, and a supervisor then sends
 * SIGTERM).
 */
export function installShutdown(
  logger: Logger,
  stopAll: () => Promise<void>,
  onStop: () => void = () => undefined,
): void {
  let stoppingOn: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals): void => {
    if (stoppingOn !== undefined) {
      if (signal !== stoppingOn) {
        logger.info({ signal }, 'tally: already shutting down');
        return;
      }
      logger.warn({ signal }, 'tally: second signal during shutdown; exiting now');
      process.exit(1);
    }
    stoppingOn = signal;
    logger.info({ signal }, 'tally: shutting down');
    onStop();
    void stopAll().then(
      () => {
        logger.info('tally: stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'tally: shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (stopOnStdinEof()) {
    if (stdinEofWhileStarting !== null) {
      process.stdin.off('end', stdinEofWhileStarting);
      process.stdin.off('error', stdinEofWhileStarting);
      stdinEofWhileStarting = null;
    }
    // Started by `cluster up`, which holds our stdin: if it dies (even by SIGKILL), stop.
    const parentGone = (): void => {
      if (stoppingOn === undefined) stop('SIGTERM');
    };
    process.stdin.on('end', parentGone);
    process.stdin.on('error', parentGone);
    process.stdin.resume();
  }
}
