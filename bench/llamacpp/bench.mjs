// llama.cpp on the same machine, in llama-bench's layout: pp = one batch of N prompt tokens into
// an empty context, tg = N single-token decodes from an empty context; tokens/s as mean ± sd over
// repetitions after one warm-up. It drives llama.cpp's own prebuilt CPU library through
// node-llama-cpp (npm), so no compiler or GitHub access is needed.
//
//   node bench.mjs --model FILE.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--no-mmap] [--json]
//
// --no-mmap reads the weights into memory (llama.cpp's --no-mmap) instead of mapping the file.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function parseArgs(argv) {
  const o = {model: "", p: 128, n: 32, t: 2, r: 3, json: false, mmap: true};
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i], next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--model" || a === "-m") o.model = next();
    else if (a === "-p") o.p = Number(next());
    else if (a === "-n") o.n = Number(next());
    else if (a === "-t") o.t = Number(next());
    else if (a === "-r") o.r = Number(next());
    else if (a === "--json") o.json = true;
    else if (a === "--no-mmap") o.mmap = false;
    else throw new Error(`unknown option ${a}`);
  }
  if (!o.model) throw new Error("--model FILE.gguf is required");
  for (const k of ["p", "n", "t", "r"])
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`-${k} must be a positive integer`);
  return o;
}

function stats(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd = values.length > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1)) : 0;
  return {mean, sd, runs: values};
}

// Token ids drawn like llama-bench's (any valid id; the content does not change the cost).
function randomTokens(count, vocab, seed) {
  let s = seed >>> 0;
  const out = [];
  for (let i = 0; i < count; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(1 + (s % (vocab - 1)));
  }
  return out;
}

const o = parseArgs(process.argv.slice(2));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 0});
const model = await llama.loadModel({modelPath: o.model, gpuLayers: 0, useMmap: o.mmap});
const vocab = model.tokenizer ? model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 1000 : 1000;

async function timePrompt(seed) {
  const context = await model.createContext({contextSize: o.p + o.n + 16, batchSize: o.p, threads: o.t, sequences: 1});
  const sequence = context.getSequence();
  const start = process.hrtime.bigint();
  await sequence.evaluateWithoutGeneratingNewTokens(randomTokens(o.p, vocab, seed));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await context.dispose();
  return o.p / seconds;
}

async function timeGeneration(seed) {
  const context = await model.createContext({contextSize: o.p + o.n + 16, batchSize: o.p, threads: o.t, sequences: 1});
  const sequence = context.getSequence();
  // Feed each sampled token back: n decodes of one token each, greedy.
  const start = process.hrtime.bigint();
  let produced = 0;
  for await (const token of sequence.evaluate(randomTokens(1, vocab, seed), {temperature: 0})) {
    void token;
    if (++produced >= o.n) break;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await context.dispose();
  return o.n / seconds;
}

const pp = [], tg = [];
await timePrompt(1);  // warm-up: page the weights in
for (let i = 0; i < o.r; ++i) pp.push(await timePrompt(100 + i));
await timeGeneration(2);
for (let i = 0; i < o.r; ++i) tg.push(await timeGeneration(200 + i));
const result = {
  engine: "llama.cpp (node-llama-cpp prebuilt CPU library)",
  model: o.model, threads: o.t,
  pp: {tokens: o.p, ...stats(pp)}, tg: {tokens: o.n, ...stats(tg)},
};
if (o.json) {
  console.log(JSON.stringify(result));
} else {
  const f = (s) => `${s.mean.toFixed(2)} ± ${s.sd.toFixed(2)}`;
  console.log(`| engine    | threads | test  |            t/s |`);
  console.log(`| --------- | ------: | ----: | -------------: |`);
  console.log(`| llama.cpp | ${o.t} | pp${o.p} | ${f(result.pp)} |`);
  console.log(`| llama.cpp | ${o.t} | tg${o.n} | ${f(result.tg)} |`);
}
await model.dispose();
await llama.dispose();
