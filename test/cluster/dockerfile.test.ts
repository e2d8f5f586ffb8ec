// The Dockerfile and .dockerignore reader of the image assembler and of test/dockerfiles.test.ts, on the
// cases where BuildKit's rules are easy to get wrong.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  execForm,
  isIgnored,
  keyValuePairs,
  parseDockerfile,
  parseDockerignore,
  shellWord,
  shellWords,
  splitFlags,
} from './dockerfile.ts';

void test('stages, global ARGs, continuations (a comment inside one is dropped) and line numbers', () => {
  const parsed = parseDockerfile(
    [
      '# syntax=docker/dockerfile:1',
      'ARG BASE=scratch',
      '',
      'FROM --platform=linux/amd64 node:24 AS build',
      'RUN npm ci \\',
      '  # a comment',
      '  --no-audit',
      'from ${BASE}',
      'copy a b',
    ].join('\n'),
  );
  assert.deepEqual(parsed.globalArgs, [{ keyword: 'ARG', args: 'BASE=scratch', line: 2 }]);
  assert.equal(parsed.stages.length, 2);
  const [build, final] = parsed.stages;
  assert.deepEqual([build!.from, build!.name, build!.platform, build!.line], ['node:24', 'build', 'linux/amd64', 4]);
  assert.deepEqual(build!.instructions, [{ keyword: 'RUN', args: 'npm ci --no-audit', line: 5 }]);
  assert.deepEqual(
    [final!.from, final!.name, final!.instructions],
    ['${BASE}', undefined, [{ keyword: 'COPY', args: 'a b', line: 9 }]],
  );
  assert.throws(
    () => parseDockerfile('COPY a b\n', 'x.Dockerfile'),
    /^Error: x\.Dockerfile:1: COPY before the first FROM$/,
  );
});

void test('words: quotes, escapes and variables as BuildKit expands them', () => {
  const vars = { A: 'one', EMPTY: '' };
  assert.deepEqual(shellWords(`$A "\${A} two" '$A' a\\ b \${EMPTY:-dflt} \${A:+alt} \${NONE}x`, vars), [
    'one',
    'one two',
    '$A',
    'a b',
    'dflt',
    'alt',
    'x',
  ]);
  assert.equal(shellWord('"/home/$A dir"', vars), '/home/one dir');
  assert.equal(shellWord('"a\\nb \\$A"', vars), 'a\\nb $A', 'inside double quotes a backslash escapes only " $ and \\');
  assert.throws(() => shellWords('${A/x/y}', vars), /unsupported variable expression/);
  assert.throws(() => shellWords('"open', vars), /unterminated " quote/);
});

void test('ENV and LABEL pairs, the legacy `KEY value` form, flags and the exec form', () => {
  assert.deepEqual(keyValuePairs('a=1 b="two words" c=${X}', { X: 'x' }), [
    ['a', '1'],
    ['b', 'two words'],
    ['c', 'x'],
  ]);
  assert.deepEqual(keyValuePairs('KEY a value with spaces', {}), [['KEY', 'a value with spaces']]);
  assert.throws(() => keyValuePairs('a=1 novalue', {}), /"novalue" is not KEY=value/);
  assert.deepEqual(splitFlags('--from=build --chmod=0555 --link /src/dist/ /app/'), {
    flags: { from: 'build', chmod: '0555', link: '' },
    rest: '/src/dist/ /app/',
  });
  assert.deepEqual(execForm('["/nodejs/bin/node", "/app/x.mjs"]'), ['/nodejs/bin/node', '/app/x.mjs']);
  assert.equal(execForm('node /app/x.mjs'), undefined);
  assert.equal(execForm('[not json'), undefined, 'BuildKit reads text that is not a JSON array as the shell form');
});

void test('.dockerignore: the last matching rule wins, a rule on a directory covers what is below, ** spans directories', () => {
  const rules = parseDockerignore('# comment\n*\n!package.json\n!cli/\n**/*.test.ts\n!cli/keep.test.ts\n');
  assert.ok(isIgnored('README.md', rules));
  assert.ok(isIgnored('test/apps/reader.ts', rules), 'a path below an ignored directory');
  assert.ok(!isIgnored('package.json', rules));
  assert.ok(!isIgnored('cli/sidekey.ts', rules), 're-included with its directory');
  assert.ok(isIgnored('cli/render.test.ts', rules));
  assert.ok(isIgnored('cli/deep/er/render.test.ts', rules));
  assert.ok(!isIgnored('cli/keep.test.ts', rules));
  assert.throws(() => parseDockerignore('[ab]*'), /character classes are not supported/);
});
