// The page (index.html): choose or drop files, see the verdict the Lambda will give. Everything
// from the files (names, cells quoted in messages) is shown as text, never as markup.
import { checkFiles, engineInfo } from "./checks.mjs";
import { allValid } from "./engine.mjs";

const $ = (id) => document.getElementById(id);
const form = $("check-form");
const input = $("files");
const drop = $("drop");
const status = $("status");
const progressList = $("progress");
const results = $("results");
let dropped = null;
let running = null;

/** Makes an element with text (never markup) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

function megabytes(bytes) {
  return bytes >= 1e6 ? `${Number((bytes / 1e6).toFixed(1))} MB` : `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

engineInfo().then(
  ({ version, maxFiles, maxBytes, accepted }) => {
    $("engine-version").textContent = `wdiv-checks ${version}`;
    const types = accepted.map((ext) => `.${ext}`);
    $("limits").textContent =
      `Accepted: ${types.slice(0, -1).join(", ")} and ${types.at(-1)} files; ` +
      `at most ${maxFiles} files and ${megabytes(maxBytes)} in one upload.`;
  },
  (error) => ($("engine-version").textContent = `could not start: ${error.message}`),
);

function chosenFiles() {
  return dropped ?? Array.from(input.files);
}

input.addEventListener("change", () => {
  dropped = null;
  if (input.files.length) check();
});
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  dropped = Array.from(event.dataTransfer.files);
  if (dropped.length) check();
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  check();
});

async function check() {
  const files = chosenFiles();
  if (!files.length) {
    status.textContent = "Choose the files of your EMS export first.";
    input.focus();
    return;
  }
  running?.abort();
  const controller = new AbortController();
  running = controller;
  results.replaceChildren();
  delete window.lastReport;
  const bars = files.map((file) =>
    el("progress", { max: String(file.size || 1), value: "0", "aria-label": `Checking ${file.name}` }),
  );
  progressList.replaceChildren(
    ...files.map((file, i) => el("li", {}, el("span", {}, `${file.name} (${megabytes(file.size)})`), bars[i])),
  );
  status.textContent = `Checking ${files.length === 1 ? "1 file" : `${files.length} files`}…`;
  $("check").disabled = true;
  const council = $("council").value.trim();
  const electionDate = $("election-date").value;
  try {
    const report = await checkFiles(files, {
      council: council || undefined,
      electionDate: electionDate || undefined,
      signal: controller.signal,
      onProgress: ({ index, bytes }) => (bars[index].value = bytes),
    });
    if (running !== controller) return;
    window.lastReport = report;
    show(report);
  } catch (error) {
    if (error.name === "AbortError") return;
    status.textContent = `The check could not run: ${error.message}`;
  } finally {
    if (running === controller) {
      running = null;
      $("check").disabled = false;
      progressList.replaceChildren();
    }
  }
}

function show(report) {
  const valid = allValid(report);
  status.textContent = valid ? "Checked: the upload will pass." : "Checked: the upload will fail.";
  const section = el(
    "section",
    { "data-testid": "report", "data-valid": String(valid), "aria-labelledby": "verdict" },
    el("h2", { id: "verdict", class: `verdict ${valid ? "pass" : "fail"}`, tabindex: "-1" },
      valid ? "These files will pass WhereDoIVote's checks" : "These files will fail WhereDoIVote's checks"),
    report.file_set.map(fileCard),
    nextSteps(report, valid),
  );
  results.replaceChildren(section);
  // Keyboard and screen-reader users land on the verdict.
  section.querySelector("h2").focus();
}

function fileCard(file) {
  const errors = file.problems.filter((p) => p.severity === "error");
  const warnings = file.problems.filter((p) => p.severity === "warning");
  const facts = [
    ["EMS", file.ems],
    ["Rows", String(file.csv_rows)],
    ["Encoding", file.csv_encoding || "–"],
  ];
  if (file.details?.delimiter) facts.push(["Delimiter", file.details.delimiter]);
  return el(
    "article",
    { class: "file", "data-testid": "file", "data-key": file.key, "data-valid": String(file.csv_valid) },
    el("h3", {}, el("span", { class: "tag" }, file.csv_valid ? "Pass" : "Fail"), file.key),
    el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    problemList("Errors", "errors", errors),
    problemList("Warnings", "warnings", warnings),
  );
}

function problemList(title, kind, problems) {
  if (!problems.length) return null;
  return [
    el("h4", {}, `${title} (${problems.length})`),
    el("ul", { class: `problems ${kind}` }, problems.map((p) =>
      el("li", { "data-code": p.code }, p.message, where(p)))),
  ];
}

function where(problem) {
  if (!problem.row && !problem.column) return null;
  const parts = [];
  if (problem.row) parts.push(`row ${problem.row}`);
  if (problem.column) parts.push(`column ${problem.column}`);
  return el("span", { class: "where" }, ` (${parts.join(", ")})`);
}

function nextSteps(report, valid) {
  const steps = valid
    ? [
        "Upload these files on WhereDoIVote's upload page.",
        report.file_set.some((f) => f.problems.length)
          ? "Read the warnings above: the upload passes, but they may mean the export is not what you meant to send."
          : null,
      ]
    : [
        "Fix the errors above, usually by exporting the file from your EMS again with the settings in Democracy Club's upload instructions, then check again.",
        "If a file is the right export and you think the check is wrong, you can still upload it: Democracy Club staff see every failed upload and can accept it.",
      ];
  return el("div", { class: "next" }, el("h3", {}, "What to do next"),
    el("ul", {}, steps.filter(Boolean).map((s) => el("li", {}, s))));
}
