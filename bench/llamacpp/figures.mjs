// Every figure of issue 19's acceptance table in ONE run, passes alternating: for each model pp and
// tg of csq (`csq bench --json --roofline`), of llama.cpp built for this machine (llama-bench -lm
// none) and of the prebuilt library (bench.mjs --no-mmap) where installed; batched generation
// (`csq bench --streams` against llama-batched-bench); the read bandwidth (best of every probe of
// every pass) and the bandwidth each tg figure implies; csq's peak memory against file + KV cache.
// Each figure is the median of its passes; a pass runs every engine on every model in turn (the
// engines' order flips from pass to pass), so drift on a shared machine hits all alike. Prints
// markdown tables, then one JSON object (--json FILE: the same with every pass's raw output).
//
//   node figures.mjs --csq PATH (--models DIR | --model LABEL=FILE ...) [--hf DIR] [--native DIR]
//                    [--passes 3] [--stream-passes 1] [--streams 1,4,8,16] [--streams-model LABEL,...]
//                    [-p 128] [-n 32] [-t 2] [--no-prebuilt] [--json FILE]
//
// --models DIR takes DIR's *BF16.gguf, *Q4_K_M.gguf and *Q8_0.gguf, and a Hugging Face directory
// in DIR (a folder with config.json and safetensors: csq synth --format hf) unless --hf DIR names
// one (csq only: llama.cpp reads GGUF). --streams-model: the GGUF models of the batched runs
// (default Q4_K_M; Q4_K_M,BF16,Q8_0 adds about 10 min on 2 cores, most of it llama-batched-bench's
// BF16 and Q8_0 prompts). A run that fails is reported and the rest goes on.
import {execFileSync} from "node:child_process";
import {existsSync, readdirSync, readFileSync, statSync, writeFileSync} from "node:fs";
import {loadavg} from "node:os";
import {join} from "node:path";
import {fileURLToPath} from "node:url";

const args = process.argv.slice(2);
const values = (flag) => {
  const out = [];
  for (let at = args.indexOf(flag); at >= 0; at = args.indexOf(flag)) {
    if (at + 1 >= args.length) throw new Error(`${flag} needs a value`);
    out.push(args.splice(at, 2)[1]);
  }
  return out;
};
const value = (flag, fallback = null) => values(flag).pop() ?? fallback;
const positive = (flag, fallback) => {
  const v = Number(value(flag, String(fallback)));
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer`);
  return v;
};
const csq = value("--csq");
if (!csq) throw new Error("--csq PATH (the csq program) is required");
const nativeDir = value("--native");
const hfDir = value("--hf");
const jsonFile = value("--json");
const passes = positive("--passes", 3), streamPasses = positive("--stream-passes", 1);
const [p, n, t] = [positive("-p", 128), positive("-n", 32), positive("-t", 2)].map(String);
const streamList = value("--streams", "1,4,8,16");
const streamCounts = streamList.split(",").map(Number);
if (streamCounts.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--streams: not a list of counts: ${streamList}`);
const noPrebuilt = args.includes("--no-prebuilt");
const streamsLabelGiven = value("--streams-model");

const models = [];
for (const spec of values("--model")) {
  const eq = spec.indexOf("=");
  if (eq < 1) throw new Error(`--model wants LABEL=FILE, got ${spec}`);
  models.push({label: spec.slice(0, eq), file: spec.slice(eq + 1), gguf: true});
}
const modelsDir = value("--models");
if (modelsDir)
  for (const label of ["BF16", "Q4_K_M", "Q8_0"]) {
    const name = readdirSync(modelsDir).find((f) => f.endsWith(`${label}.gguf`));
    if (name) models.push({label, file: join(modelsDir, name), gguf: true});
    else console.error(`note: no *${label}.gguf in ${modelsDir}`);
  }
// A Hugging Face directory: config.json and model.safetensors or a shard index.
const isHfDir = (dir) => statSync(dir).isDirectory() && existsSync(join(dir, "config.json")) &&
                         (existsSync(join(dir, "model.safetensors")) || existsSync(join(dir, "model.safetensors.index.json")));
const hfFound = hfDir ?? (modelsDir ? readdirSync(modelsDir).sort().map((f) => join(modelsDir, f)).find(isHfDir) : undefined);
if (hfFound) models.push({label: "BF16 (HF directory)", file: hfFound, gguf: false});
const leftover = args.filter((a) => a !== "--no-prebuilt");
if (leftover.length) throw new Error(`unknown arguments: ${leftover.join(" ")}`);
if (!models.length) throw new Error("no model: give --models DIR or --model LABEL=FILE");
for (const m of models) if (!existsSync(m.file)) throw new Error(`${m.file} not found`);
const streamsLabels = (streamsLabelGiven ?? (models.some((m) => m.label === "Q4_K_M") ? "Q4_K_M" : models[0].label)).split(",");
const streamsModels = streamsLabels.map((label) => {
  const m = models.find((x) => x.label === label && x.gguf);
  if (!m) throw new Error(`--streams-model ${label}: no GGUF model with that label`);
  return m;
});

const here = fileURLToPath(new URL(".", import.meta.url));
const nativeBin = (name) => (nativeDir ? join(nativeDir, "build", "bin", name) : null);
if (nativeDir) for (const b of ["llama-bench", "llama-batched-bench"])
  if (!existsSync(nativeBin(b))) throw new Error(`${nativeBin(b)} not found: run build-native.sh ${nativeDir} first`);
const prebuilt = !noPrebuilt && existsSync(join(here, "node_modules", "node-llama-cpp"));
if (!noPrebuilt && !prebuilt) console.error("note: node-llama-cpp is not installed (npm ci in bench/llamacpp): no prebuilt figures");

// One program run; its stdout, or null (the failure noted) so that an unattended run goes on.
const failures = [];
const capture = (file, argv, what) => {
  console.error(`  ${what}`);
  try {
    return execFileSync(file, argv, {stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26, timeout: 20 * 60 * 1000}).toString();
  } catch (e) {
    const how = e.signal ? `killed by ${e.signal}` : e.status !== null && e.status !== undefined ? `exit ${e.status}` : e.message;
    const detail = `${how}: ` + (e.stderr?.toString() ?? "").trim().split("\n").slice(-2).join(" / ");
    failures.push({what, detail});
    console.error(`  FAILED: ${what}: ${detail}`);
    return null;
  }
};
const json = (text) => (text === null ? null : JSON.parse(text));

const runs = Object.fromEntries(models.map((m) => [m.label, {csq: [], native: [], prebuilt: []}]));
const streamRuns = Object.fromEntries(streamsModels.map((m) => [m.label, {csq: [], native: []}]));
const engines = {
  csq: (m) => json(capture(csq, ["bench", "-m", m.file, "-p", p, "-n", n, "-t", t, "-r", "1", "--json", "--roofline"],
                           `csq bench ${m.label}`)),
  native: (m) => {
    if (!nativeDir || !m.gguf) return null;
    const tests = json(capture(nativeBin("llama-bench"), ["-m", m.file, "-p", p, "-n", n, "-t", t, "-r", "1", "-lm", "none",
                                                           "-o", "json"], `llama-bench ${m.label}`));
    if (!tests) return null;
    const pick = (pp) => tests.find((x) => (pp ? x.n_prompt > 0 && x.n_gen === 0 : x.n_gen > 0 && x.n_prompt === 0));
    return {pp: pick(true)?.avg_ts, tg: pick(false)?.avg_ts, build_commit: tests[0]?.build_commit, cpu_info: tests[0]?.cpu_info};
  },
  prebuilt: (m) => {
    if (!prebuilt || !m.gguf) return null;
    const r = json(capture(process.execPath, [join(here, "bench.mjs"), "-m", m.file, "-p", p, "-n", n, "-t", t, "-r", "1",
                                              "--no-mmap", "--json"], `prebuilt llama.cpp ${m.label}`));
    return r && {pp: r.pp.mean, tg: r.tg.mean};
  },
};

const loadStart = loadavg();
const started = Date.now();
for (let pass = 0; pass < passes; ++pass) {
  console.error(`pass ${pass + 1}/${passes}`);
  const order = pass % 2 ? ["prebuilt", "native", "csq"] : ["csq", "native", "prebuilt"];
  for (const m of models)
    for (const engine of order) {
      const r = engines[engine](m);
      if (!r) continue;
      runs[m.label][engine].push(r);
      // Each figure as it comes, so that an interrupted run still leaves its numbers on stderr.
      const [pp, tg] = engine === "csq" ? ["pp", "tg"].map((x) => r.results.find((y) => y.test.startsWith(x))?.avg_ts)
                                        : [r.pp, r.tg];
      console.error(`    ${engine} ${m.label}: pp ${pp?.toFixed(2) ?? "–"} t/s, tg ${tg?.toFixed(2) ?? "–"} t/s`);
    }
}
const ctx = String(Math.max(...streamCounts) * (Number(p) + Number(n)));
for (let pass = 0; pass < streamPasses; ++pass)
  for (const streamsModel of streamsModels) {
    console.error(`streams pass ${pass + 1}/${streamPasses} (${streamsModel.label})`);
    const ours = () => json(capture(csq, ["bench", "-m", streamsModel.file, "-p", p, "-n", n, "-t", t, "-r", "1", "--streams",
                                          streamList, "--json"], `csq bench --streams ${streamList} ${streamsModel.label}`));
    const theirs = () => {
      if (!nativeDir) return null;
      const text = capture(nativeBin("llama-batched-bench"),
                           ["-m", streamsModel.file, "-npp", p, "-ntg", n, "-npl", streamList, "-t", t, "-tb", t, "-c", ctx,
                            "-b", "2048", "-ub", "512", "-lm", "none", "--output-format", "jsonl"],
                           `llama-batched-bench -npl ${streamList} ${streamsModel.label}`);
      return text && text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    };
    const [first, second] = pass % 2 ? [theirs, ours] : [ours, theirs];
    const a = first(), b = second();
    const [mine, native] = pass % 2 ? [b, a] : [a, b];
    const runsOf = streamRuns[streamsModel.label];
    if (mine) runsOf.csq.push(mine.streams);
    if (native) runsOf.native.push(native);
    if (mine) console.error(`    csq S_TG: ${mine.streams.map((x) => `${x.streams}: ${x.tg_tokens_per_s.toFixed(2)}`).join(", ")}`);
    if (native) console.error(`    llama.cpp S_TG: ${native.map((x) => `${x.pl}: ${x.speed_tg.toFixed(2)}`).join(", ")}`);
  }
const loadEnd = loadavg();

const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const pick = (list, test) => list.map((r) => r[test]);
const csqFigure = (r, prefix) => r.results.find((x) => x.test.startsWith(prefix));
// The best read bandwidth of every probe of every csq run: the roofline every tg figure is held against.
const probes = Object.values(runs).flatMap((r) => r.csq.flatMap((x) => x.bandwidth_probes ?? []));
const bestBandwidth = probes.length ? Math.max(...probes) : null;
const int8Peak = Math.max(0, ...Object.values(runs).flatMap((r) => r.csq.map((x) => x.int8_peak_macs_per_s ?? 0)));

const rows = [], memory = [];
for (const m of models) {
  const r = runs[m.label];
  for (const test of ["pp", "tg"]) {
    const mine = median(r.csq.map((x) => csqFigure(x, test)?.avg_ts));
    const native = median(pick(r.native, test)), pre = median(pick(r.prebuilt, test));
    const row = {model: m.label, test: `${test}${test === "pp" ? p : n}`, csq: mine, csq_passes: r.csq.map((x) => csqFigure(x, test)?.avg_ts),
                 native, native_passes: pick(r.native, test), csq_over_native: mine && native ? mine / native : null,
                 prebuilt: pre, prebuilt_passes: pick(r.prebuilt, test), csq_over_prebuilt: mine && pre ? mine / pre : null};
    if (test === "tg" && r.csq.length) {
      const bytes = r.csq[0].weight_bytes_per_token;
      row.csq_bandwidth = mine * bytes;
      row.native_bandwidth = native ? native * bytes : null;
      row.csq_share_of_best_bandwidth = bestBandwidth ? (mine * bytes) / bestBandwidth : null;
    }
    // Only prompts that run on int8 arithmetic (the quantized types) compare with the int8 peak.
    if (test === "pp" && r.csq.length && int8Peak && /int8/.test(r.csq[0].pp_roofline_arithmetic ?? ""))
      row.csq_share_of_int8_roofline = mine / (int8Peak / r.csq[0].prompt_macs_per_token);
    rows.push(row);
  }
  if (r.csq.length) {
    const file = r.csq[0].model_size, kv = r.csq[0].kv_cache_bytes, peak = Math.max(...r.csq.map((x) => x.peak_rss_bytes));
    memory.push({model: m.label, file_bytes: file, kv_cache_bytes: kv, peak_rss_bytes: peak, bound_bytes: 1.1 * (file + kv),
                 within_bound: peak <= 1.1 * (file + kv)});
  }
}
const streams = streamsModels.flatMap(({label}) => streamCounts.map((count) => {
  const r = streamRuns[label];
  const mine = median(r.csq.map((s) => s.find((x) => x.streams === count)?.tg_tokens_per_s));
  const native = median(r.native.map((s) => s.find((x) => x.pl === count)?.speed_tg));
  return {model: label, streams: count, csq_tg: mine, native_tg: native, csq_over_native: mine && native ? mine / native : null,
          csq_pp: median(r.csq.map((s) => s.find((x) => x.streams === count)?.pp_tokens_per_s)),
          native_pp: median(r.native.map((s) => s.find((x) => x.pl === count)?.speed_pp))};
}));

const f = (v, d = 2) => (v === null || v === undefined ? "–" : v.toFixed(d));
const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(0)}%`);
const ratio = (v) => (v === null || v === undefined ? "–" : `${v.toFixed(2)}×`);
const gb = (v) => (v === null || v === undefined ? "–" : (v / 1e9).toFixed(1));
const gib = (v) => (v / 2 ** 30).toFixed(2);
const cpuModel = (() => {
  try {
    return /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
})();
const anyCsq = Object.values(runs).find((r) => r.csq.length)?.csq[0];
const nativeInfo = Object.values(runs).find((r) => r.native.length)?.native[0];
const minutes = (Date.now() - started) / 60000;
console.log(`## csq vs llama.cpp, ${cpuModel}, ${t} threads`);
console.log(`medians of ${passes} passes (streams: ${streamPasses}), passes alternating; ${minutes.toFixed(1)} min; ` +
            `load average ${loadStart.map((x) => x.toFixed(1)).join(" ")} at the start, ${loadEnd.map((x) => x.toFixed(1)).join(" ")} at the end`);
console.log(`csq kernels ${anyCsq?.kernels ?? "?"}; best read bandwidth ${gb(bestBandwidth)} GB/s (of ${probes.length} probes); ` +
            `int8 multiply-add peak ${gb(int8Peak)} G/s` + (nativeInfo ? `; native llama.cpp ${nativeInfo.build_commit}` : "") +
            (prebuilt ? "; prebuilt: node-llama-cpp" : ""));
console.log("\n| model | test | csq t/s | native t/s | csq / native | prebuilt t/s | csq / prebuilt | csq GB/s | share of best bandwidth | share of int8 roofline |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows)
  console.log(`| ${r.model} | ${r.test} | ${f(r.csq)} | ${f(r.native)} | ${ratio(r.csq_over_native)} | ${f(r.prebuilt)} | ` +
              `${ratio(r.csq_over_prebuilt)} | ${gb(r.csq_bandwidth)} | ${pct(r.csq_share_of_best_bandwidth)} | ${pct(r.csq_share_of_int8_roofline)} |`);
console.log(`\n| model | streams (-npp ${p} -ntg ${n}) | csq S_TG t/s | llama-batched-bench S_TG t/s | csq / llama.cpp | csq S_PP t/s | llama.cpp S_PP t/s |`);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const s of streams)
  console.log(`| ${s.model} | ${s.streams} | ${f(s.csq_tg)} | ${f(s.native_tg)} | ${ratio(s.csq_over_native)} | ${f(s.csq_pp)} | ${f(s.native_pp)} |`);
console.log("\n| model | file GiB | KV cache GiB | csq peak RSS GiB | bound (file + KV) × 1.1 | within |");
console.log("| --- | ---: | ---: | ---: | ---: | --- |");
for (const m of memory)
  console.log(`| ${m.model} | ${gib(m.file_bytes)} | ${gib(m.kv_cache_bytes)} | ${gib(m.peak_rss_bytes)} | ${gib(m.bound_bytes)} | ${m.within_bound ? "yes" : "NO"} |`);
if (failures.length) {
  console.log(`\n${failures.length} run(s) failed:`);
  for (const x of failures) console.log(`- ${x.what}: ${x.detail}`);
}
const report = {cpu: cpuModel, threads: Number(t), n_prompt: Number(p), n_gen: Number(n), passes, stream_passes: streamPasses,
                load_start: loadStart, load_end: loadEnd, minutes, kernels: anyCsq?.kernels, best_read_bandwidth_bytes_per_s: bestBandwidth,
                bandwidth_probes: probes, int8_peak_macs_per_s: int8Peak, native: nativeInfo ?? null, rows, streams, memory,
                failures};
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({...report, raw: {runs, streams: streamRuns}}, null, 1));
console.log(JSON.stringify(report));
