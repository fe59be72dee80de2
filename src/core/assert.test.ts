import { afterEach, describe, expect, it } from 'vitest';
import {
  AssertionFailure,
  assert,
  crashOnAssertionFailure,
  exitAssertionFailed,
  onAssertionFailure,
  rethrowIfAssertion,
} from './assert';
import { UnavailableError } from './errors';

describe('assert', () => {
  let remove: () => void = () => undefined;
  afterEach(() => remove());

  it('throws an AssertionFailure (not a TallyError) with the message', () => {
    expect(() => assert(1 > 2, 'numbers: order')).toThrow(AssertionFailure);
    expect(() => assert(false, 'numbers: order')).toThrow('assertion failed: numbers: order');
    expect(() => assert(true, 'fine')).not.toThrow();
  });

  it('rethrowIfAssertion hands a failed assertion on and lets operating errors be handled', () => {
    const handled = (err: unknown): string => {
      rethrowIfAssertion(err);
      return 'handled';
    };
    expect(handled(new UnavailableError('peer gone'))).toBe('handled');
    expect(() => handled(new AssertionFailure('bug'))).toThrow(AssertionFailure);
  });

  it('in production a failed assertion logs fatal and exits 70, even where a catch would swallow it', () => {
    const logged: string[] = [];
    const exits: number[] = [];
    remove = crashOnAssertionFailure(
      (failure) => logged.push(failure.message),
      (code) => exits.push(code),
    );
    try {
      assert(false, 'committer: acknowledged IDs are new');
    } catch {
      // A careless catch on the way up (an error reply, a retry): the process has exited anyway.
    }
    expect(logged).toEqual(['assertion failed: committer: acknowledged IDs are new']);
    expect(exits).toEqual([exitAssertionFailed]);
    expect(exitAssertionFailed).toBe(70);
  });

  it('a handler, once removed, is not called; another one removed late does not remove the new one', () => {
    const seen: string[] = [];
    const first = onAssertionFailure(() => seen.push('first'));
    first();
    expect(() => assert(false, 'x')).toThrow(AssertionFailure);
    remove = onAssertionFailure(() => seen.push('second'));
    first();
    expect(() => assert(false, 'y')).toThrow(AssertionFailure);
    expect(seen).toEqual(['second']);
  });
});
