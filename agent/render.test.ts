import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseEnv } from 'node:util';
import { VENV_BIN } from '../devkit/process.ts';
import type { FileSpec } from '../injector/agent-config.ts';
import type { SecretValue } from './provider.ts';
import { renderFile } from './render.ts';
import { RenderError } from './render-error.ts';
import { renderTemplate } from './template.ts';
import { defined } from '../injector/defined.ts';

const DB: SecretValue = {
  kind: 'object',
  value: { username: 'app', password: "p@ss w'rd", port: 5432, nested: { host: 'db.local' } },
};
const JSON_TEXT: SecretValue = { kind: 'text', value: '{"username":"app","password":"hunter2"}' };
const BINARY: SecretValue = { kind: 'binary', value: new Uint8Array([0, 1, 2, 255]) };

function spec(over: Partial<FileSpec> & { field?: string }): Pick<FileSpec, 'name' | 'ref' | 'format' | 'template'> {
  const { field, ...rest } = over;
  return { name: 'out', ref: { provider: 'file', path: 'p', ...defined({ field }) }, ...rest };
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

void describe('renderFile formats', () => {
  const cases: { name: string; value: SecretValue; spec: ReturnType<typeof spec>; want: string }[] = [
    { name: 'one field defaults to raw', value: DB, spec: spec({ field: 'password' }), want: "p@ss w'rd" },
    {
      name: 'whole object defaults to json',
      value: DB,
      spec: spec({}),
      want: `${JSON.stringify(DB.value, null, 2)}\n`,
    },
    { name: 'number field raw', value: DB, spec: spec({ field: 'port' }), want: '5432' },
    { name: 'dotted field', value: DB, spec: spec({ field: 'nested.host' }), want: 'db.local' },
    { name: 'field of JSON text', value: JSON_TEXT, spec: spec({ field: 'password' }), want: 'hunter2' },
    { name: 'plain text raw', value: { kind: 'text', value: 'abc\n' }, spec: spec({}), want: 'abc\n' },
    {
      name: 'raw of an object is compact json',
      value: DB,
      spec: spec({ field: 'nested', format: 'raw' }),
      want: '{"host":"db.local"}\n',
    },
    { name: 'json of one field', value: DB, spec: spec({ field: 'username', format: 'json' }), want: '"app"\n' },
    {
      name: 'yaml',
      value: DB,
      spec: spec({ format: 'yaml' }),
      want: "username: app\npassword: p@ss w'rd\nport: 5432\nnested:\n  host: db.local\n",
    },
    {
      name: 'env quotes what a shell would split',
      value: { kind: 'object', value: { USER: 'app', PASS: 'p w $x', Q: "it's", N: 1 } },
      spec: spec({ format: 'env' }),
      want: "USER=app\nPASS='p w $x'\nQ=\"it's\"\nN=1\n",
    },
    {
      name: 'env of one field uses the field name',
      value: DB,
      spec: spec({ field: 'username', format: 'env' }),
      want: 'username=app\n',
    },
    {
      name: 'properties escapes',
      value: { kind: 'object', value: { 'a key': 'x=y:z', url: ' lead\nnext', ü: 'é😀' } },
      spec: spec({ format: 'properties' }),
      want: 'a\\ key=x\\=y\\:z\nurl=\\ lead\\nnext\n\\u00fc=\\u00e9\\ud83d\\ude00\n',
    },
    { name: 'binary in json is base64', value: BINARY, spec: spec({ format: 'json' }), want: '"AAEC/w=="\n' },
    {
      name: 'template',
      value: DB,
      spec: spec({ template: 'postgres://{{ .username }}:{{.password}}@{{ .nested.host }}/app' }),
      want: "postgres://app:p@ss w'rd@db.local/app",
    },
    {
      name: 'template whole value',
      value: { kind: 'text', value: 'tok' },
      spec: spec({ template: 'Bearer {{ . }}' }),
      want: 'Bearer tok',
    },
  ];
  for (const c of cases) {
    void it(c.name, async () => {
      assert.equal(text(await renderFile(c.spec, c.value)), c.want);
    });
  }

  void it('binary raw stays bytes', async () => {
    assert.deepEqual([...(await renderFile(spec({}), BINARY))], [0, 1, 2, 255]);
  });
});

void describe('render errors name the field, never a value', () => {
  const cases: { name: string; value: SecretValue; spec: ReturnType<typeof spec>; code: string; mentions: string }[] = [
    { name: 'missing field', value: DB, spec: spec({ field: 'token' }), code: 'FIELD_MISSING', mentions: '"token"' },
    {
      name: 'field of plain text',
      value: { kind: 'text', value: 'hunter2' },
      spec: spec({ field: 'x' }),
      code: 'NOT_AN_OBJECT',
      mentions: '"x"',
    },
    {
      name: 'template missing field',
      value: DB,
      spec: spec({ template: '{{ .username }}:{{ .token }}' }),
      code: 'FIELD_MISSING',
      mentions: '"token"',
    },
    {
      name: 'template code',
      value: DB,
      spec: spec({ template: '{{ range .x }}' }),
      code: 'TEMPLATE_SYNTAX',
      mentions: 'offset 0',
    },
    {
      name: 'bad env key',
      value: { kind: 'object', value: { 'bad-key': 'hunter2' } },
      spec: spec({ format: 'env' }),
      code: 'BAD_KEY',
      mentions: 'bad-key',
    },
  ];
  for (const c of cases) {
    void it(c.name, async () => {
      await assert.rejects(renderFile(c.spec, c.value), (error: unknown) => {
        assert.ok(error instanceof RenderError);
        assert.equal(error.code, c.code);
        assert.ok(error.message.includes(c.mentions), error.message);
        for (const secret of ['hunter2', "p@ss w'rd", 'app:']) assert.ok(!error.message.includes(secret));
        return true;
      });
    });
  }

  void it('bounds template output', () => {
    const big = 'x'.repeat(1000);
    assert.throws(() => renderTemplate('{{ . }}'.repeat(600), () => big), { code: 'TOO_LARGE' });
  });
});

void describe('env format: every reader gets the same single value, or the value is refused', () => {
  const accepted = [
    "it's",
    'p w $x',
    'a#b c',
    ' lead and trail ',
    'back\\slash',
    'say "hi"',
    'tab\there',
    'ünï 😀',
    '$(id) `id`',
    '=x=',
    '',
  ];
  const refused = ["a'b\nLD_PRELOAD=/tmp/x.so", 'two\nlines', 'cr\rhere', "it's $x", 'ends with\\', 'a\\\\b', `'"`];
  const dir = mkdtempSync(join(tmpdir(), 'sidekey-env-'));

  /** What POSIX sh, Node's parseEnv and python-dotenv read from an env file. */
  function readers(file: string, content: string): Record<string, Record<string, string>> {
    writeFileSync(file, content);
    const sh = execFileSync(
      'sh',
      [
        '-c',
        'set -a; . "$1"; "$2" -e "process.stdout.write(JSON.stringify({ K: process.env.K }))"',
        'sh',
        file,
        process.execPath,
      ],
      { encoding: 'utf8', env: {} },
    );
    const python = execFileSync(
      join(VENV_BIN, 'python'),
      ['-c', 'import json, sys; from dotenv import dotenv_values; print(json.dumps(dotenv_values(sys.argv[1])))', file],
      { encoding: 'utf8' },
    );
    return {
      sh: JSON.parse(sh) as Record<string, string>,
      parseEnv: { ...parseEnv(content) } as Record<string, string>,
      'python-dotenv': JSON.parse(python) as Record<string, string>,
    };
  }

  void it('values that quoting carries for every reader', async () => {
    for (const [i, value] of accepted.entries()) {
      const content = text(await renderFile(spec({ format: 'env' }), { kind: 'object', value: { K: value } }));
      for (const [reader, got] of Object.entries(readers(join(dir, `ok-${i}.env`), content)))
        assert.deepEqual(got, { K: value }, `${reader} reads ${JSON.stringify(content)}`);
    }
  });

  void it('values no quoting carries are refused with BAD_VALUE, naming the key and never the value', async () => {
    for (const value of refused) {
      await assert.rejects(
        renderFile(spec({ format: 'env' }), { kind: 'object', value: { SECRET_KEY: value } }),
        (error: unknown) => {
          assert.ok(error instanceof RenderError);
          assert.equal(error.code, 'BAD_VALUE');
          assert.match(error.message, /key "SECRET_KEY".*use format json, properties or raw, or a template/);
          if (value.length > 2) assert.ok(!error.message.includes(value));
          return true;
        },
      );
    }
    rmSync(dir, { recursive: true, force: true });
  });
});
