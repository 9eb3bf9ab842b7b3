// Drives `csq serve` with the official OpenAI SDK for Node, as a SIEM/SOAR script would.
// CSQ_BINARY and CSQ_MODEL come from CTest (tests/CMakeLists.txt).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

const binary = process.env.CSQ_BINARY;
const modelPath = process.env.CSQ_MODEL;
const alias = 'csq-test';
let server;
let client;
let baseURL;

before(async () => {
  assert.ok(binary && modelPath, 'CSQ_BINARY and CSQ_MODEL must be set');
  server = spawn(binary, ['serve', '--model', modelPath, '--port', '0', '--parallel', '4', '--ctx', '1024',
                          '--model-alias', alias, '--threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  baseURL = await new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + log)), 60000);
    server.stderr.on('data', (chunk) => {
      log += chunk.toString();
      const m = log.match(/on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${log}`)));
  });
  client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (!server) return;
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));
});

const ask = (extra = {}) => client.chat.completions.create({
  model: alias,
  messages: [{ role: 'user', content: 'Map CVE-2024-23848 to a CWE.' }],
  max_tokens: 24,
  ...extra,
});

test('lists the served model', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [alias]);
});

test('seeded sampling is reproducible', async () => {
  const a = await ask({ temperature: 1.2, seed: 1234 });
  const b = await ask({ temperature: 1.2, seed: 1234 });
  const c = await ask({ temperature: 1.2, seed: 4321 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content + a.choices[0].message.reasoning_content,
                  c.choices[0].message.content + c.choices[0].message.reasoning_content);
  assert.equal(a.usage.completion_tokens, b.usage.completion_tokens);
});

test('streaming equals non-streaming under greedy decoding', async () => {
  const whole = await ask({ temperature: 0 });
  const stream = await ask({ temperature: 0, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let reasoning = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? '';
      reasoning += choice.delta.reasoning_content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.equal(content, whole.choices[0].message.content);
  assert.equal(reasoning, whole.choices[0].message.reasoning_content ?? '');
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.ok(usage, 'include_usage sends a usage chunk');
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test('json_schema output is valid against the schema', async () => {
  const schema = {
    type: 'object',
    properties: {
      cwe: { type: 'string', pattern: 'CWE-[0-9]{1,4}' },
      severity: { type: 'string', enum: ['low', 'medium', 'high', 'critical'] },
      exploited: { type: 'boolean' },
    },
    required: ['cwe', 'severity', 'exploited'],
  };
  for (const seed of [1, 2, 3]) {
    const r = await ask({ temperature: 1.0, seed, max_tokens: 200,
                          response_format: { type: 'json_schema', json_schema: { name: 'triage', schema } } });
    const parsed = JSON.parse(r.choices[0].message.content);
    assert.match(parsed.cwe, /^CWE-[0-9]{1,4}$/);
    assert.ok(schema.properties.severity.enum.includes(parsed.severity));
    assert.equal(typeof parsed.exploited, 'boolean');
  }
});

test('stop strings are honoured and not emitted', async () => {
  const free = await ask({ temperature: 0, max_tokens: 32 });
  const text = free.choices[0].message.content;
  assert.ok(text.length > 4, 'the greedy answer is long enough to cut: ' + JSON.stringify(text));
  const stop = text.slice(2, 4);
  const cut = await ask({ temperature: 0, max_tokens: 32, stop: [stop] });
  assert.equal(cut.choices[0].message.content, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
});

test('n = 3 returns three choices', async () => {
  const r = await ask({ n: 3, temperature: 1.0, seed: 9 });
  assert.equal(r.choices.length, 3);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
});

test('a malformed request gets a 4xx and the server stays up', async () => {
  await assert.rejects(() => client.chat.completions.create({ model: alias, messages: 'not a list' }),
                       (err) => err.status === 400 && /messages/.test(err.message));
  const raw = await fetch(baseURL + '/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                           body: '{"messages": [' });
  assert.equal(raw.status, 400);
  const body = await raw.json();
  assert.ok(body.error && body.error.message);
  await assert.rejects(() => ask({ model: 'gpt-4' }), (err) => err.status === 404);
  const health = await fetch(baseURL.replace('/v1', '/health'));
  assert.equal(health.status, 200);
});

test('eight concurrent greedy requests give identical answers', async () => {
  const answers = await Promise.all(Array.from({ length: 8 }, () => ask({ temperature: 0 })));
  const texts = answers.map((a) => a.choices[0].message.content + '|' + (a.choices[0].message.reasoning_content ?? ''));
  assert.equal(new Set(texts).size, 1, texts.join('\n'));
});

test('completions endpoint and metrics', async () => {
  const r = await client.completions.create({ model: alias, prompt: 'Indicators of compromise:', max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  const metrics = await (await fetch(baseURL.replace('/v1', '/metrics'))).text();
  assert.match(metrics, /csq_prefix_cache_hit_ratio/);
  assert.match(metrics, /csq_time_to_first_token_seconds_bucket/);
});
