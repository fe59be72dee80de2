/** A failed assertion is a bug: it throws an AssertionFailure that nothing should catch. */
export class AssertionFailure extends Error {
  override name = 'AssertionFailure';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(`assertion failed: ${message}`);
}
