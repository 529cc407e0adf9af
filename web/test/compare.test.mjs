// The WebAssembly engine (web/dist/cli.mjs) against the native binary (`check --json`): the same
// report, field for field, and the same exit code, for every case of our fixtures
// (fixtures/cases.json), every case of the conformance corpus (WDIV_CONFORMANCE_DIR, by default
// ../shared/conformance), every fixture file on its own, and a file read from stdin.
//
//   web/build.sh && cargo build && node --test web/test/compare.test.mjs
//
// WDIV_NATIVE_CHECK names the native binary (default: $CARGO_TARGET_DIR or target/, debug).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, openSync } from "node:fs";
import { join, relative } from "node:path";
import { nativeBinary, root } from "./native.mjs";

const cli = join(root, "web/dist/cli.mjs");
const native = nativeBinary("debug");
const conformance = process.env.WDIV_CONFORMANCE_DIR ?? join(root, "../shared/conformance");

// Both read the councils exempt from the 1 KB floor from the environment: use their default.
const environment = { ...process.env, NO_COLOR: "1" };
delete environment.SIZE_FLOOR_EXEMPT_COUNCILS;

/** Runs a command to its end: its exit code and output. `stdin`: a file to read from. */
function run(command, args, { stdin } = {}) {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: [stdin ? openSync(stdin, "r") : "ignore", "pipe", "pipe"],
      env: environment,
    });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", fail);
    child.on("close", (code) =>
      done({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** Both engines on one `check` argument list: the same JSON and exit code. */
async function same(name, args, options) {
  const [a, b] = await Promise.all([
    run(native, ["check", "--json", ...args], options),
    run(process.execPath, [cli, "check", "--json", ...args], options),
  ]);
  assert.equal(a.code === 0 || a.code === 1, true, `${name}: native exit ${a.code}: ${a.stderr}`);
  assert.equal(b.code, a.code, `${name}: exit codes differ (native ${a.code}, wasm ${b.code}): ${b.stderr}`);
  assert.deepStrictEqual(JSON.parse(b.stdout), JSON.parse(a.stdout), `${name}: reports differ`);
  // Not only the same fields: the same text, as the native binary prints it.
  assert.equal(b.stdout, a.stdout, `${name}: the JSON is not printed the same way`);
}

function casesOf(casesJson, filesDir) {
  const doc = JSON.parse(readFileSync(casesJson, "utf8"));
  return doc.cases.map((c) => ({
    name: c.name,
    args: [
      ...(c.council ? ["--council", c.council] : []),
      ...(c.election_date ? ["--election-date", c.election_date] : []),
      ...c.files.map((f) => relative(root, join(filesDir, f))),
    ],
  }));
}

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Runs `jobs` two at a time (the machine's cores), collecting every failure. */
async function all(jobs) {
  const failures = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++];
      await job().catch((e) => failures.push(e.message));
    }
  };
  await Promise.all([worker(), worker()]);
  assert.deepStrictEqual(failures, [], `${failures.length} of ${jobs.length} differ`);
  return jobs.length;
}

test("the engines are built", () => {
  assert.ok(existsSync(cli), `${cli} is missing: run web/build.sh`);
  assert.ok(existsSync(native), `${native} is missing: run cargo build (or set WDIV_NATIVE_CHECK)`);
});

test("every case of our fixtures gets the same report from both engines", async () => {
  const cases = casesOf(join(root, "fixtures/cases.json"), join(root, "fixtures/uploads"));
  assert.ok(cases.length >= 60, "the fixtures' cases are found");
  await all(cases.map((c) => () => same(c.name, c.args)));
});

test("every case of the conformance corpus gets the same report from both engines", async (t) => {
  const casesJson = join(conformance, "cases.json");
  if (!existsSync(casesJson)) {
    if (process.env.CI) assert.fail(`the conformance corpus is not at ${conformance} (set WDIV_CONFORMANCE_DIR)`);
    t.skip(`no conformance corpus at ${conformance}`);
    return;
  }
  const cases = casesOf(casesJson, join(conformance, "files"));
  assert.ok(cases.length > 0);
  await all(cases.map((c) => () => same(c.name, c.args)));
});

test("every fixture file alone, and with an election date, gets the same report", async () => {
  const files = filesUnder(join(root, "fixtures/uploads")).map((f) => relative(root, f));
  assert.ok(files.length > 40, "the fixture files are found");
  await all(
    files.flatMap((f) => [
      () => same(f, [f]),
      () => same(`${f} (IOS, 2024-05-02)`, ["--council", "IOS", "--election-date", "2024-05-02", f]),
    ]),
  );
});

test("a file read from stdin gets the same report", async () => {
  const file = join(root, "fixtures/uploads/ems/xpress-dc.csv");
  assert.ok(existsSync(file), `${file} exists`);
  await same("stdin", ["-"], { stdin: file });
});

test("usage and I/O errors exit 2 from both", async () => {
  for (const args of [["no-such-file.csv"], ["--election-date", "2024-13-01", "x.csv"], ["fixtures"]]) {
    const a = await run(native, ["check", ...args]);
    const b = await run(process.execPath, [cli, "check", ...args]);
    assert.equal(a.code, 2, `native ${args}: ${a.stderr}`);
    assert.equal(b.code, 2, `wasm ${args}: ${b.stderr}`);
    assert.match(b.stderr, /^error: /, "the error says what is wrong");
  }
});
