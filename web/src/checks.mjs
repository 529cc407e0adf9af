// wdiv-checks in the browser: the checks WhereDoIVote's Lambda runs on an upload, run on the
// council officer's own machine before the upload. The files never leave the page: each is
// streamed (`File.stream()`) into the WebAssembly engine in a Web Worker. See docs/browser.md.
//
//   import { checkFiles } from "./checks.mjs";
//   const report = await checkFiles(input.files, { council: "E07000223", electionDate: "2024-05-02" });
//   if (!report.file_set.every((f) => f.csv_valid)) { /* show report.file_set[i].problems */ }

/**
 * Checks an upload's files: the report the Lambda will give, as `check --json` prints it
 * (`{file_set: [...], email_due}`). Advisory: staff may still override a failure.
 *
 * @param {File[] | FileList} files the upload's files (one, or two for Democracy Counts)
 * @param {object} [options]
 * @param {string} [options.council] the council's id (e.g. "E07000223"; "IOS" is exempt from
 *   the 1 KB floor)
 * @param {string} [options.electionDate] the election's date, YYYY-MM-DD
 * @param {string[]} [options.sizeFloorExempt] councils exempt from the 1 KB floor (default IOS)
 * @param {boolean} [options.fileSetRules=true] apply the Lambda's rules about the set of files
 *   (refused names and types, at most 10 files and 300 MB, the length of a name the site
 *   stores); false judges each file alone, as the command-line `check` does
 * @param {(p: {index: number, name: string, bytes: number, total: number}) => void} [options.onProgress]
 * @param {(p: {index: number, report: object}) => void} [options.onFile] each file's report as it is ready
 * @param {AbortSignal} [options.signal] stops the check (the promise rejects with an AbortError)
 * @returns {Promise<object>} the upload's report
 */
export function checkFiles(files, options = {}) {
  const list = Array.from(files);
  const { onProgress, onFile, signal, ...engineOptions } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new DOMException("The check was stopped", "AbortError"));
      return;
    }
    const worker = startWorker();
    const end = () => {
      worker.terminate();
      signal?.removeEventListener("abort", abort);
    };
    const abort = () => {
      end();
      reject(signal.reason ?? new DOMException("The check was stopped", "AbortError"));
    };
    signal?.addEventListener("abort", abort);
    worker.onmessage = ({ data }) => {
      switch (data.type) {
        case "progress":
          onProgress?.({ index: data.index, name: list[data.index].name, bytes: data.bytes, total: data.total });
          break;
        case "file":
          onFile?.({ index: data.index, report: data.report });
          break;
        case "done":
          end();
          resolve(data.report);
          break;
        case "error":
          end();
          reject(new Error(data.message));
          break;
      }
    };
    worker.onerror = (event) => {
      end();
      reject(new Error(`the check could not run: ${event.message ?? "the worker failed to start"}`));
    };
    worker.postMessage({ type: "check", files: list, options: engineOptions });
  });
}

/**
 * What judges the files: `{version, maxFiles, maxBytes, accepted}`, the engine's version (the
 * `wdiv-checks` crate's) and the upload's file-set limits and accepted extensions it applies.
 */
export function engineInfo() {
  return new Promise((resolve, reject) => {
    const worker = startWorker();
    worker.onmessage = ({ data }) => {
      worker.terminate();
      if (data.type === "info") resolve(data.info);
      else reject(new Error(data.message));
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`the check engine could not start: ${event.message ?? "worker error"}`));
    };
    worker.postMessage({ type: "info" });
  });
}

/** The engine's version (the `wdiv-checks` crate's), which judges the files. */
export async function engineVersion() {
  return (await engineInfo()).version;
}

function startWorker() {
  return new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
}
