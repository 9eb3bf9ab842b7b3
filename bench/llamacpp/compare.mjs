// csq against llama.cpp on the same machine, in one run: `csq bench --json --roofline` and
// bench.mjs on the same GGUF, the same -p/-n/-t/-r, then the ratios.
//
//   node compare.mjs --csq ../../build/csq --model FILE.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--mmap]
//
// Both read the weights into memory (csq's default, llama.cpp's --no-mmap); with --mmap both map
// the file instead (csq --mmap, llama.cpp's default), so the two always hold the weights alike.
import {execFileSync} from "node:child_process";
import {fileURLToPath} from "node:url";

const args = process.argv.slice(2);
const csqAt = args.indexOf("--csq");
if (csqAt < 0 || csqAt + 1 >= args.length) throw new Error("--csq PATH (the csq program) is required");
const csq = args[csqAt + 1];
const mapped = args.includes("--mmap");
const shared = args.filter((a, i) => i !== csqAt && i !== csqAt + 1 && a !== "--mmap");

const run = (file, argv) => JSON.parse(execFileSync(file, argv, {stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24}));
const mine = run(csq, ["bench", ...shared, "--json", "--roofline", ...(mapped ? ["--mmap"] : [])]);
const theirs = run(process.execPath,
                   [fileURLToPath(new URL("bench.mjs", import.meta.url)), ...shared, "--json", ...(mapped ? [] : ["--no-mmap"])]);

// The same machine's rooflines for both: memory bandwidth for tg, multiply-add peak for pp.
const roofline = (test) => (test.startsWith("tg") ? mine.tg_roofline_tokens_per_s : mine.pp_roofline_tokens_per_s) ?? null;
const rows = [];
for (const r of mine.results) {
  const other = r.test.startsWith("pp") ? theirs.pp : theirs.tg;
  rows.push({test: r.test, csq: r.avg_ts, csq_sd: r.stddev_ts, llamacpp: other.mean, llamacpp_sd: other.sd,
             ratio: r.avg_ts / other.mean, csq_roofline: r.roofline_fraction ?? null,
             llamacpp_roofline: roofline(r.test) ? other.mean / roofline(r.test) : null});
}
console.log(`${mine.model_type}, ${mine.n_threads} threads, ${mine.repetitions} runs each, weights ` +
            `${mapped ? "mapped" : "loaded into memory"} by both; read bandwidth ` +
            `${(mine.read_bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s, tg roofline ` +
            `${mine.tg_roofline_tokens_per_s.toFixed(2)} tok/s; int8 multiply-add peak ` +
            `${(mine.int8_peak_macs_per_s / 1e9).toFixed(1)} G/s, pp roofline ${(mine.pp_roofline_tokens_per_s ?? 0).toFixed(2)} tok/s; csq peak memory ${(mine.peak_rss_bytes / 2 ** 30).toFixed(2)} GiB`);
console.log("| test  |   csq t/s        | llama.cpp t/s    | csq / llama.cpp | roofline csq | roofline llama.cpp |");
console.log("| ----- | ---------------: | ---------------: | --------------: | -----------: | -----------------: |");
const pct = (v) => (v === null ? "" : `${(100 * v).toFixed(1)}%`);
for (const r of rows)
  console.log(`| ${r.test.padEnd(5)} | ${r.csq.toFixed(2)} ± ${r.csq_sd.toFixed(2)} | ${r.llamacpp.toFixed(2)} ± ` +
              `${r.llamacpp_sd.toFixed(2)} | ${r.ratio.toFixed(2)}× | ${pct(r.csq_roofline)} | ${pct(r.llamacpp_roofline)} |`);
console.log(JSON.stringify({csq: mine, llamacpp: theirs, rows}));
