// The page (web/dist/index.html) in headless Chromium, as a council officer uses it: choose
// files, read the verdict. Its reports equal the native binary's for the same files, and no
// request leaves the page's origin. Saves a screenshot (WDIV_SCREENSHOT, by default
// web/dist/screenshot.png).
//
//   web/build.sh && cargo build && PLAYWRIGHT_CORE=DIR node --test web/test/browser.test.mjs
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { serve } from "./serve.mjs";
import { launch, openPage } from "./chromium.mjs";
import { nativeBinary, root } from "./native.mjs";

const fixture = (path) => join(root, "fixtures/uploads", path);
const native = nativeBinary("debug");

let server;
let context;
let page;
const requests = [];

before(async () => {
  server = await serve(join(root, "web/dist"));
  context = await launch();
  context.on("request", (request) => requests.push(request.url()));
  page = context.pages()[0] ?? (await context.newPage());
  await openPage(page, server.origin);
});

after(async () => {
  await context?.close();
  await server?.close();
});

/** The native binary's report on `paths`, keyed by file name as the page keys it. */
function nativeReport(paths, args = []) {
  let out;
  try {
    out = execFileSync(native, ["check", "--json", ...args, ...paths], { encoding: "utf8" });
  } catch (error) {
    out = error.stdout; // exit 1: a file fails
  }
  const report = JSON.parse(out);
  for (const file of report.file_set) file.key = basename(file.key);
  return report;
}

/** Chooses `files` on the page (paths, or {name, mimeType, buffer}) and waits for the report. */
async function check(files) {
  await page.evaluate(() => {
    document.getElementById("results").replaceChildren();
    delete window.lastReport;
  });
  await page.setInputFiles("#files", files);
  const report = page.getByTestId("report");
  await report.waitFor({ timeout: 30_000 });
  const shown = await page.evaluate(() => ({
    valid: document.querySelector('[data-testid="report"]').dataset.valid,
    files: [...document.querySelectorAll('[data-testid="file"]')].map((f) => ({
      key: f.dataset.key,
      valid: f.dataset.valid,
      text: f.textContent,
    })),
    last: window.lastReport,
  }));
  return shown;
}

test("a valid file passes, with the native binary's report", async () => {
  const path = fixture("ems/xpress-dc.csv");
  const shown = await check([path]);
  assert.equal(shown.valid, "true");
  assert.deepEqual(shown.files.map((f) => [f.key, f.valid]), [["xpress-dc.csv", "true"]]);
  assert.deepStrictEqual(shown.last, nativeReport([path]));
});

test("a Democracy Counts pair passes together, and one file alone is told its partner is missing", async () => {
  const pair = [fixture("democracy-counts/stations.csv"), fixture("democracy-counts/districts.csv")];
  const shown = await check(pair);
  assert.equal(shown.valid, "true");
  assert.deepEqual(shown.files.map((f) => f.valid), ["true", "true"]);
  assert.deepStrictEqual(shown.last, nativeReport(pair));

  const alone = await check([pair[0]]);
  assert.equal(alone.valid, "false");
  assert.match(alone.files[0].text, /Expected 2 files, found 1/);
});

test("an invalid file fails, and the page shows each error in the Lambda's words", async () => {
  const path = fixture("records/short-row-in-middle.csv");
  const shown = await check([path]);
  const expected = nativeReport([path]);
  assert.equal(shown.valid, "false");
  assert.equal(shown.files[0].valid, "false");
  assert.deepStrictEqual(shown.last, expected);
  const errors = expected.file_set[0].problems.filter((p) => p.severity === "error");
  assert.ok(errors.length > 0);
  for (const error of errors) assert.ok(shown.files[0].text.includes(error.message), error.message);
  await page.screenshot({ path: process.env.WDIV_SCREENSHOT ?? join(root, "web/dist/screenshot.png"), fullPage: true });
});

test("an Excel workbook renamed .csv fails as a spreadsheet", async () => {
  const shown = await check([fixture("filetype/xlsx-renamed.csv")]);
  assert.equal(shown.valid, "false");
  assert.match(shown.files[0].text, /Excel/);
  assert.deepStrictEqual(shown.last, nativeReport([fixture("filetype/xlsx-renamed.csv")]));
});

test("the Lambda's file-set rules refuse a file of another type and a hostile name, unread", async () => {
  const valid = readFileSync(fixture("ems/xpress-dc.csv"));
  const shown = await check([
    { name: "xpress-dc.csv", mimeType: "text/csv", buffer: valid },
    { name: "notes.docx", mimeType: "application/octet-stream", buffer: Buffer.alloc(2000) },
    { name: "evil\u202Evsc.csv", mimeType: "text/csv", buffer: valid },
  ]);
  assert.equal(shown.valid, "false");
  const codes = shown.last.file_set.map((f) => f.problems.map((p) => p.code));
  assert.deepEqual(codes[1], ["file-type-not-accepted"]);
  assert.deepEqual(codes[2], ["bad-file-name"]);
  // The name is shown escaped, as text: no markup, no reversed text.
  assert.ok(!shown.files[2].key.includes("\u202E"));
  assert.equal(shown.files[0].valid, "true", "the good file is still checked");
});

test("files dropped on the page are checked as chosen ones are", async () => {
  await page.evaluate(() => {
    document.getElementById("results").replaceChildren();
    delete window.lastReport;
  });
  const path = fixture("ems/idox-eros.csv");
  const dataTransfer = await page.evaluateHandle(
    ({ name, text }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([text], name, { type: "text/csv" }));
      return transfer;
    },
    { name: "idox-eros.csv", text: readFileSync(path, "utf8") },
  );
  await page.dispatchEvent("#drop", "drop", { dataTransfer });
  await page.getByTestId("report").waitFor();
  assert.deepStrictEqual(await page.evaluate(() => window.lastReport), nativeReport([path]));
});

test("every control has a label, and the check runs from the keyboard", async () => {
  for (const [label, id] of [
    ["Council ID", "council"],
    ["Election date", "election-date"],
    ["Files from your EMS export", "files"],
  ]) {
    assert.equal(await page.getByLabel(label).getAttribute("id"), id, `${label} labels #${id}`);
  }
  // Files chosen, then the button pressed with Enter: the report comes again.
  await page.setInputFiles("#files", [fixture("ems/xpress-dc.csv")]);
  await page.getByTestId("report").waitFor();
  await page.evaluate(() => document.getElementById("results").replaceChildren());
  await page.getByRole("button", { name: "Check the files" }).focus();
  await page.keyboard.press("Enter");
  await page.getByTestId("report").waitFor();
  // Focus moves to the verdict, for keyboard and screen-reader users.
  assert.equal(await page.evaluate(() => document.activeElement.id), "verdict");
});

test("no request left the page's origin", () => {
  assert.ok(requests.length > 0, "requests were recorded");
  const outside = requests.filter((url) => !url.startsWith(`${server.origin}/`) && !/^(data|blob):/.test(url));
  assert.deepEqual(outside, []);
  assert.ok(requests.some((url) => url.endsWith(".wasm")), "the engine came from the origin");
});
