// The browser build's figures on the benchmark file (bench-data/xpress-dc-149MB.csv, made by
// scripts/gen_xpress_dc.py when missing), in one run:
//   - the native `check --json` (two threads), and `node web/dist/cli.mjs check --json`: wall
//     time (median of the rounds) and peak memory (GNU time's maximum resident set);
//   - the page (web/dist/index.html) in headless Chromium, from choosing the file to the
//     report on screen, and the peak memory of all Chromium's processes together;
//   - the engine's size, gzipped.
//
//   cargo build --release && web/build.sh && PLAYWRIGHT_CORE=DIR node web/bench.mjs [--rounds N]
//
// WDIV_NATIVE_CHECK names the native binary (default: target/release/wdiv-s3-trigger).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { serve } from "./test/serve.mjs";
import { launch, openPage } from "./test/chromium.mjs";
import { nativeBinary, root } from "./test/native.mjs";

const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf("--rounds") + 1] || 5) || 5;
const file = join(root, "bench-data/xpress-dc-149MB.csv");
const native = nativeBinary("release");
const cli = join(root, "web/dist/cli.mjs");
const time = "/usr/bin/time";

for (const [path, how] of [
  [native, "cargo build --release (or set WDIV_NATIVE_CHECK)"],
  [cli, "web/build.sh"],
  [time, "apt-get install time"],
]) {
  if (!existsSync(path)) {
    console.error(`error: ${path} is missing: ${how}`);
    process.exit(2);
  }
}
if (!existsSync(file)) execFileSync("python3", [join(root, "scripts/gen_xpress_dc.py")], { stdio: "inherit" });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One run of a command under GNU time: seconds, peak RSS in MB, and the report. */
function timed(command, commandArgs) {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn(time, ["-f", "%M", command, ...commandArgs], { stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", fail);
    child.on("close", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const lines = Buffer.concat(err).toString().trim().split("\n");
      done({ seconds, mb: Number(lines.at(-1)) / 1024, report: JSON.parse(Buffer.concat(out).toString()) });
    });
  });
}

/** The summed resident memory of the browser's processes (those started with `marker`), MB. */
function browserRss(marker) {
  let kb = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)) continue;
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (rss) kb += Number(rss[1]);
    } catch {
      // gone meanwhile
    }
  }
  return kb / 1024;
}

const size = statSync(file).size;
console.log(`file: ${file} (${(size / 1e6).toFixed(1)} MB), ${rounds} rounds`);
const results = { native: [], cli: [] };
let reports = {};
for (let i = 0; i < rounds; i++) {
  for (const [name, command, commandArgs] of [
    ["native", native, ["check", "--json", file]],
    ["cli", process.execPath, [cli, "check", "--json", file]],
  ]) {
    const run = await timed(command, commandArgs);
    results[name].push(run);
    reports[name] = run.report;
  }
}
reports.cli.file_set[0].key = reports.native.file_set[0].key;
const same = JSON.stringify(reports.cli) === JSON.stringify(reports.native);

const server = await serve(join(root, "web/dist"));
const context = await launch();
const page = context.pages()[0] ?? (await context.newPage());
const marker = context.userDataDir;
const pageRuns = [];
for (let i = 0; i < rounds; i++) {
  await openPage(page, server.origin);
  const before = browserRss(marker);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, browserRss(marker))), 50);
  const started = process.hrtime.bigint();
  await page.setInputFiles("#files", file);
  await page.getByTestId("report").waitFor({ timeout: 120_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peak = Math.max(peak, browserRss(marker));
  const valid = await page.evaluate(() => window.lastReport.file_set[0].csv_rows);
  pageRuns.push({ seconds, mb: peak, before, rows: valid });
}
await context.close();
await server.close();

const wasm = readFileSync(join(root, "web/dist/pkg/wdiv_checks_web_bg.wasm"));
const build = JSON.parse(readFileSync(join(root, "web/dist/build.json"), "utf8"));
const n = median(results.native.map((r) => r.seconds));
const c = median(results.cli.map((r) => r.seconds));
const p = median(pageRuns.map((r) => r.seconds));
const fmt = (s) => `${s.toFixed(3)} s`;
console.log(`engine: wdiv-checks ${build.engineVersion}, simd128 ${build.simd128 ? "on" : "off"}`);
console.log(`native check --json     ${fmt(n)}   peak ${Math.max(...results.native.map((r) => r.mb)).toFixed(1)} MB`);
console.log(
  `node cli.mjs --json     ${fmt(c)}   peak ${Math.max(...results.cli.map((r) => r.mb)).toFixed(1)} MB   ` +
    `${(c / n).toFixed(1)}x native (target <= 15x); same report: ${same}`,
);
const growth = Math.max(...pageRuns.map((r) => r.mb - r.before));
console.log(
  `page in Chromium        ${fmt(p)}   peak +${growth.toFixed(1)} MB while checking (all its processes, ` +
    `${median(pageRuns.map((r) => r.before)).toFixed(0)} MB before choosing)   target <= 3 s; rows ${pageRuns[0].rows}`,
);
console.log(`engine .wasm            ${(wasm.length / 1e6).toFixed(2)} MB, ${(gzipSync(wasm, { level: 9 }).length / 1e6).toFixed(2)} MB gzipped (target < 1 MB)`);
if (!same) {
  console.error("error: the WebAssembly report differs from the native one");
  process.exit(1);
}
