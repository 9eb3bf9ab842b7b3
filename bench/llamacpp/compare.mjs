// csq against llama.cpp on the same machine, in one run: `csq bench --json --roofline` and
// bench.mjs (llama.cpp's prebuilt library) on the same GGUF, the same -p/-n/-t/-r, then the ratios;
// with --native DIR also llama-bench of a llama.cpp built from source for this machine
// (build-native.sh DIR), reported beside the prebuilt one.
//
//   node compare.mjs --csq ../../build/csq --model FILE.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--mmap]
//                    [--native DIR] [--streams 1,4,8,16]
//
// Both read the weights into memory (csq's default, llama.cpp's --no-mmap / -lm none); with --mmap
// both map the file instead (csq --mmap, llama.cpp's default), so the two always hold the weights
// alike. --streams (needs --native) adds batched generation: `csq bench --streams` against
// llama-batched-bench -npp P -ntg N -npl LIST, aggregate tokens/s per stream count.
import {execFileSync} from "node:child_process";
import {existsSync} from "node:fs";
import {join} from "node:path";
import {fileURLToPath} from "node:url";

const args = process.argv.slice(2);
const take = (flag) => {
  const at = args.indexOf(flag);
  if (at < 0) return null;
  if (at + 1 >= args.length) throw new Error(`${flag} needs a value`);
  return args.splice(at, 2)[1];
};
const csq = take("--csq");
if (!csq) throw new Error("--csq PATH (the csq program) is required");
const nativeDir = take("--native");
const streams = take("--streams");
if (streams && !nativeDir) throw new Error("--streams compares with llama-batched-bench: it needs --native DIR");
const mapped = args.includes("--mmap");
const shared = args.filter((a) => a !== "--mmap");
const option = (flag, fallback) => {
  const at = shared.indexOf(flag);
  return at >= 0 && at + 1 < shared.length ? shared[at + 1] : fallback;
};
const model = option("--model", option("-m", null));
if (!model) throw new Error("--model FILE.gguf is required");
const [p, n, t, r] = [option("-p", "128"), option("-n", "32"), option("-t", "2"), option("-r", "3")];

const nativeBin = (name) => {
  const file = join(nativeDir, "build", "bin", name);
  if (!existsSync(file)) throw new Error(`${file} not found: run build-native.sh ${nativeDir} first`);
  return file;
};
const output = (file, argv) => execFileSync(file, argv, {stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26}).toString();
const run = (file, argv) => JSON.parse(execFileSync(file, argv, {stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24}));
const loadMode = mapped ? "mmap" : "none";

const mine = run(csq, ["bench", ...shared, "--json", "--roofline", ...(mapped ? ["--mmap"] : [])]);
const theirs = run(process.execPath,
                   [fileURLToPath(new URL("bench.mjs", import.meta.url)), ...shared, "--json", ...(mapped ? [] : ["--no-mmap"])]);
// llama-bench -o json: one object per test, n_prompt / n_gen telling pp from tg.
let native = null;
if (nativeDir) {
  const tests = JSON.parse(output(nativeBin("llama-bench"),
                                  ["-m", model, "-p", p, "-n", n, "-t", t, "-r", r, "-lm", loadMode, "-o", "json"]));
  const pick = (pp) => tests.find((x) => (pp ? x.n_prompt > 0 && x.n_gen === 0 : x.n_gen > 0 && x.n_prompt === 0));
  native = {pp: pick(true), tg: pick(false), build_commit: tests[0]?.build_commit, cpu_info: tests[0]?.cpu_info};
}

// The same machine's rooflines for all: memory bandwidth for tg, multiply-add peak for pp.
const roofline = (test) => (test.startsWith("tg") ? mine.tg_roofline_tokens_per_s : mine.pp_roofline_tokens_per_s) ?? null;
const rows = [];
for (const row of mine.results) {
  const pp = row.test.startsWith("pp");
  const other = pp ? theirs.pp : theirs.tg;
  const nat = native ? (pp ? native.pp : native.tg) : null;
  rows.push({test: row.test, csq: row.avg_ts, csq_sd: row.stddev_ts, llamacpp: other.mean, llamacpp_sd: other.sd,
             ratio: row.avg_ts / other.mean, csq_roofline: row.roofline_fraction ?? null,
             llamacpp_roofline: roofline(row.test) ? other.mean / roofline(row.test) : null,
             ...(nat ? {native: nat.avg_ts, native_sd: nat.stddev_ts, native_ratio: row.avg_ts / nat.avg_ts,
                        native_roofline: roofline(row.test) ? nat.avg_ts / roofline(row.test) : null} : {})});
}
const gbps = (v) => (v / 1e9).toFixed(1);
console.log(`${mine.model_type}, ${mine.n_threads} threads, ${mine.repetitions} runs each, weights ` +
            `${mapped ? "mapped" : "loaded into memory"} by all; read bandwidth ` +
            `${gbps(mine.read_bandwidth_bytes_per_s)} GB/s (best of ${mine.bandwidth_probes?.length ?? 1} probes), tg roofline ` +
            `${mine.tg_roofline_tokens_per_s.toFixed(2)} tok/s; int8 multiply-add peak ` +
            `${gbps(mine.int8_peak_macs_per_s)} G/s, pp roofline ${(mine.pp_roofline_tokens_per_s ?? 0).toFixed(2)} tok/s; csq peak memory ${(mine.peak_rss_bytes / 2 ** 30).toFixed(2)} GiB`);
if (native) console.log(`llama.cpp native build ${native.build_commit} on ${native.cpu_info}`);
const pct = (v) => (v === null || v === undefined ? "" : `${(100 * v).toFixed(1)}%`);
const nativeCols = native ? " native llama.cpp t/s | csq / native | roofline native |" : "";
console.log(`| test  |   csq t/s        | prebuilt llama.cpp t/s | csq / prebuilt | roofline csq | roofline prebuilt |${nativeCols}`);
console.log(`| ----- | ---------------: | ---------------------: | -------------: | -----------: | ----------------: |${native ? " ---: | ---: | ---: |" : ""}`);
for (const row of rows)
  console.log(`| ${row.test.padEnd(5)} | ${row.csq.toFixed(2)} ± ${row.csq_sd.toFixed(2)} | ${row.llamacpp.toFixed(2)} ± ` +
              `${row.llamacpp_sd.toFixed(2)} | ${row.ratio.toFixed(2)}× | ${pct(row.csq_roofline)} | ${pct(row.llamacpp_roofline)} |` +
              (native ? ` ${row.native.toFixed(2)} ± ${row.native_sd.toFixed(2)} | ${row.native_ratio.toFixed(2)}× | ${pct(row.native_roofline)} |` : ""));

// Batched generation: aggregate tokens/s per stream count, csq and llama-batched-bench.
let batched = null;
if (streams) {
  const counts = streams.split(",").map(Number);
  const ours = run(csq, ["bench", "--model", model, "-p", p, "-n", n, "-t", t, "-r", r, "--streams", streams, "--json",
                         ...(mapped ? ["--mmap"] : [])]).streams;
  const ctx = String(Math.max(...counts) * (Number(p) + Number(n)));
  const lines = output(nativeBin("llama-batched-bench"),
                       ["-m", model, "-npp", p, "-ntg", n, "-npl", streams, "-t", t, "-tb", t, "-c", ctx, "-b", "2048",
                        "-ub", "512", "-lm", loadMode, "--output-format", "jsonl"])
                    .split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  batched = counts.map((count) => {
    const a = ours.find((x) => x.streams === count), b = lines.find((x) => x.pl === count);
    return {streams: count, csq_tg: a?.tg_tokens_per_s, llamacpp_tg: b?.speed_tg, csq_pp: a?.pp_tokens_per_s,
            llamacpp_pp: b?.speed_pp};
  });
  console.log("\n| streams | csq S_TG t/s | llama.cpp S_TG t/s | ratio | csq S_PP t/s | llama.cpp S_PP t/s |");
  console.log("| ------: | -----------: | -----------------: | ----: | -----------: | -----------------: |");
  for (const b of batched)
    console.log(`| ${b.streams} | ${b.csq_tg?.toFixed(2)} | ${b.llamacpp_tg?.toFixed(2)} | ${(b.csq_tg / b.llamacpp_tg).toFixed(2)}× | ` +
                `${b.csq_pp?.toFixed(2)} | ${b.llamacpp_pp?.toFixed(2)} |`);
}
console.log(JSON.stringify({csq: mine, llamacpp: theirs, native, rows, batched}));
