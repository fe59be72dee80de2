/**
 * A failed assertion is a bug: it throws an AssertionFailure that nothing may turn into an
 * error reply, a retry or a log line. In production it ends the process at once: `tally serve`
 * and `tally controller` install crashOnAssertionFailure, so a failed assertion logs a fatal
 * line and exits even if some catch on its way up would swallow it. Elsewhere (tests, the
 * simulator) it throws; the catch blocks on the paths from the assertions (committer,
 * replication, node) hand it on with rethrowIfAssertion, so a test sees it.
 */
export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

type FailureHandler = (failure: AssertionFailure) => void;

/** Process-wide, like process.on(): set once by the CLI (or a simulator that records). */
let handler: FailureHandler | null = null;

export function assert(condition: unknown, message: string): asserts condition {
  if (condition) return;
  const failure = new AssertionFailure(`assertion failed: ${message}`);
  handler?.(failure);
  throw failure;
}

/** For a catch block that turns errors into replies or retries: a failed assertion goes on up. */
export function rethrowIfAssertion(err: unknown): void {
  if (err instanceof AssertionFailure) throw err;
}

/**
 * Every failed assertion from now on calls `onFailure` first (then throws as before);
 * returns a function that removes it.
 */
export function onAssertionFailure(onFailure: FailureHandler): () => void {
  handler = onFailure;
  return () => {
    if (handler === onFailure) handler = null;
  };
}

/** Exit status of a process stopped by a failed assertion (EX_SOFTWARE: an internal error). */
export const exitAssertionFailed = 70;

/**
 * Production: a failed assertion logs `fatal` and exits the process with exitAssertionFailed
 * before anything can catch it. (Other bugs that escape — an uncaught exception, an unhandled
 * rejection — end the process as Node does: the stack on stderr, exit status 1.)
 */
export function crashOnAssertionFailure(
  logFatal: (failure: AssertionFailure) => void,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  return onAssertionFailure((failure) => {
    logFatal(failure);
    exit(exitAssertionFailed);
  });
}
