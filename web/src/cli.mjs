#!/usr/bin/env node
// `node web/dist/cli.mjs check [--json] [--council ID] [--election-date YYYY-MM-DD]
//  [--size-floor-exempt IDS] FILE...`: the native `check` command, run by the WebAssembly engine
// from Node. Same report (with --json, the same JSON), same exit codes: 0 every file passes,
// 1 one fails, 2 a usage or I/O error. For tests, and for anyone without the native binary.
import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import * as wasm from "./pkg/wdiv_checks_web.js";
import { allValid, checkFile, uploadReport } from "./engine.mjs";

const EXIT_PASS = 0;
const EXIT_FAIL = 1;
const EXIT_ERROR = 2;
const USAGE = `Usage: cli.mjs check [--json] [--council ID] [--election-date YYYY-MM-DD] [--size-floor-exempt IDS] FILE...

Checks the files of one upload (a Democracy Counts upload has two) with the WebAssembly engine.
'-' reads one file from stdin. Exit 0 when every file passes, 1 when one fails, 2 for a usage or
I/O error.`;

class UsageError extends Error {}

function parseArgs(argv) {
  const [command, ...args] = argv;
  if (command === "--help" || command === "-h") {
    console.log(USAGE);
    process.exit(EXIT_PASS);
  }
  if (command === "--version" || command === "-V") {
    return { version: true };
  }
  if (command !== "check") {
    throw new UsageError(command ? `unknown command '${command}' (only 'check')` : "no command given");
  }
  const exempt = process.env.SIZE_FLOOR_EXEMPT_COUNCILS;
  const parsed = { json: false, files: [], sizeFloorExempt: exempt ? exempt.split(",") : ["IOS"] };
  const value = (name, i) => {
    if (i >= args.length) throw new UsageError(`a value is required for '${name}'`);
    return args[i];
  };
  let onlyFiles = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s) : [arg];
    const take = () => (inline !== undefined ? inline : value(flag, ++i));
    if (onlyFiles || arg === "-" || !arg.startsWith("-")) parsed.files.push(arg);
    else if (arg === "--") onlyFiles = true;
    else if (flag === "--json") parsed.json = true;
    else if (flag === "--council") parsed.council = take();
    else if (flag === "--election-date") {
      parsed.electionDate = take();
    } else if (flag === "--size-floor-exempt") parsed.sizeFloorExempt = take().split(",");
    else if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(EXIT_PASS);
    } else throw new UsageError(`unexpected argument '${arg}'`);
  }
  if (parsed.files.length === 0) throw new UsageError("the following required arguments were not provided: <FILE>...");
  return parsed;
}

/** Every file is opened first, so a typo is reported before any work is done. */
async function openInputs(files) {
  let stdinSeen = false;
  const inputs = [];
  for (const path of files) {
    if (path === "-") {
      if (stdinSeen) throw new Error("stdin (-) can be given only once");
      stdinSeen = true;
      inputs.push({ key: "-", size: undefined, chunks: () => process.stdin });
      continue;
    }
    let handle, stat;
    try {
      handle = await open(path, "r");
      stat = await handle.stat();
    } catch (error) {
      throw new Error(`cannot read ${path}: ${error.message}`);
    }
    if (stat.isDirectory()) throw new Error(`${path} is a directory; give the files of the upload instead`);
    inputs.push({ key: path, size: stat.size, chunks: () => readChunks(handle) });
  }
  return inputs;
}

/** Bytes read at a time. */
const READ_BYTES = 1 << 20;

/**
 * A file's bytes in chunks, from two buffers used in turn: the next read is under way while the
 * engine checks the last one (which it copies before the buffer is read into again), so memory
 * stays flat whatever the file's size.
 */
async function* readChunks(handle) {
  const buffers = [Buffer.allocUnsafe(READ_BYTES), Buffer.allocUnsafe(READ_BYTES)];
  let turn = 0;
  let pending = handle.read(buffers[turn], 0, READ_BYTES, null);
  try {
    for (;;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) return;
      const full = buffers[turn];
      turn ^= 1;
      pending = handle.read(buffers[turn], 0, READ_BYTES, null);
      yield full.subarray(0, bytesRead);
    }
  } finally {
    await pending.catch(() => {});
    await handle.close();
  }
}

function summary(report) {
  const lines = [];
  for (const file of report.file_set) {
    lines.push(`${file.csv_valid ? "PASS" : "FAIL"}  ${file.key}`);
    lines.push(`      EMS       ${file.ems}`);
    lines.push(`      Rows      ${file.csv_rows}`);
    lines.push(`      Encoding  ${file.csv_encoding || "-"}`);
    const errors = file.problems.filter((p) => p.severity === "error");
    const warnings = file.problems.filter((p) => p.severity === "warning");
    for (const [label, list] of [["Errors", errors], ["Warnings", warnings]]) {
      list.forEach((p, i) => {
        const where = p.row ? ` (row ${p.row}${p.column ? `, ${p.column}` : ""})` : "";
        lines.push(`      ${(i === 0 ? label : "").padEnd(9)} • ${p.overridden ? "[overridden] " : ""}${p.message}${where}`);
      });
    }
  }
  return lines.join("\n") + "\n";
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`error: ${error.message}\n\n${USAGE}\n`);
    return EXIT_ERROR;
  }
  wasm.initSync({ module: readFileSync(new URL("./pkg/wdiv_checks_web_bg.wasm", import.meta.url)) });
  if (args.version) {
    console.log(`wdiv-checks ${wasm.engineVersion()} (WebAssembly)`);
    return EXIT_PASS;
  }
  const options = { council: args.council, electionDate: args.electionDate, sizeFloorExempt: args.sizeFloorExempt };
  try {
    // The engine reads the options as it will for every file; of those given here, only the
    // election date can be refused.
    wasm.checkOptions(JSON.stringify(options));
  } catch (error) {
    process.stderr.write(
      `error: invalid value '${args.electionDate}' for '--election-date <YYYY-MM-DD>': ${error.message}\n\n${USAGE}\n`,
    );
    return EXIT_ERROR;
  }
  let inputs;
  try {
    inputs = await openInputs(args.files);
  } catch (error) {
    process.stderr.write(`error: ${error.message}\n`);
    return EXIT_ERROR;
  }
  const reports = [];
  for (const input of inputs) {
    try {
      reports.push(await checkFile(wasm, { name: input.key, size: input.size, chunks: input.chunks(), options }));
    } catch (error) {
      const path = input.key === "-" ? "stdin" : input.key;
      process.stderr.write(`error: cannot read ${path}: ${error.message}\n`);
      return EXIT_ERROR;
    }
  }
  const json = uploadReport(wasm, reports);
  const report = JSON.parse(json);
  process.stdout.write(args.json ? `${json}\n` : summary(report));
  return allValid(report) ? EXIT_PASS : EXIT_FAIL;
}

process.exitCode = await main();
