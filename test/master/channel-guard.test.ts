import test from 'ava';
import { NestingScan } from '../../src/master/channel-guard.js';

test('the nesting scan counts brackets outside strings, across pieces, line by line', (t) => {
  const scan = new NestingScan();
  // Brackets inside strings, escaped quotes among them, are text.
  t.false(scan.deeperThan(`{"cmd":"app","x":"${'['.repeat(100)}\\"${'{'.repeat(100)}"}\n`, 3));
  // A line's depth carries over from one piece to the next...
  t.false(scan.deeperThan('{"a":[[', 3));
  t.true(scan.deeperThan('[', 3));
  // ...and a newline starts again from nothing, also in the middle of a string.
  const fresh = new NestingScan();
  t.false(fresh.deeperThan('{"a":"[[[[\n', 3));
  t.false(fresh.deeperThan('{"a":[[]]}\n{"b":[[]]}\n', 3));
  t.true(fresh.deeperThan('[[[[]]]]\n', 3));
});
