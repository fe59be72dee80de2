/**
 * Runs async steps one at a time, in call order: each starts once the previous has settled
 * (a failed step does not stop the ones after it).
 */
export class Serial {
  private chain: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
