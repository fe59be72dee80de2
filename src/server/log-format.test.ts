import { describe, expect, it } from 'vitest';
import { prettyLine } from './log-format';

describe('prettyLine', () => {
  it('turns a pino JSON line into time, level, module, message and key=value', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 3, 10, 1, 2, 345),
      pid: 1,
      hostname: 'h',
      name: 'tally',
      module: 'controller',
      primary: 'a',
      epoch: 3,
      reason: 'primary a unreachable for 504 ms',
      err: { type: 'Error', message: 'boom', stack: '…' },
      msg: 'controller: failover: promoting b',
    });
    expect(prettyLine(`${line}\n`)).toBe(
      '10:01:02.345 WARN  [controller] controller: failover: promoting b primary=a epoch=3 reason="primary a unreachable for 504 ms" err="boom"\n',
    );
  });

  it('passes through what is not a pino line', () => {
    expect(prettyLine('{"event":"serving","grpcPort":1}\n')).toBe(
      '{"event":"serving","grpcPort":1}\n',
    );
    expect(prettyLine('plain text\n')).toBe('plain text\n');
    expect(prettyLine('{not json\n')).toBe('{not json\n');
  });
});
