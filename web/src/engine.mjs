// The check engine's JavaScript side, shared by the Worker (web/src/worker.mjs) and the Node
// command (web/src/cli.mjs): it streams one file's bytes into the WebAssembly checker and builds
// the upload's report. `wasm` is the module wasm-bindgen generated (web/dist/pkg/), initialised.

/**
 * Checks one file, reading `chunks` (an async iterable of Uint8Array) only as far as needed.
 *
 * @param {object} wasm the initialised wasm-bindgen module
 * @param {object} file `{name, size, chunks, options, onProgress}`: `size` in bytes, or
 *   undefined when unknown (stdin); `options` the engine's options object (council,
 *   electionDate, sizeFloorExempt, uploadFiles); `onProgress(bytesRead)` after each chunk
 * @returns {Promise<object>} the file's report, in the wire format
 */
export async function checkFile(wasm, { name, size, chunks, options = {}, onProgress }) {
  const check = guard(wasm, () => new wasm.FileCheck(name, size, JSON.stringify(options)));
  try {
    if (check.wantsBytes()) {
      let read = 0;
      let feeding = true;
      for await (const chunk of chunks) {
        read += chunk.length;
        onProgress?.(read);
        if (feeding) {
          feeding = guard(wasm, () => check.feed(chunk));
          if (!feeding && size !== undefined) {
            // The verdict is known: the rest of a file whose size is known is counted unread.
            check.count(size - read);
            break;
          }
        } else if (!check.count(chunk.length)) {
          break;
        }
      }
    }
    return JSON.parse(guard(wasm, () => check.finish()));
  } finally {
    check.free();
  }
}

/**
 * The upload's report from its files' reports, as the native `check --json` prints it.
 *
 * @param {object} wasm the initialised wasm-bindgen module
 * @param {object[]} reports the files' reports, in the upload's order
 * @returns {string} the report as pretty JSON (parse it for an object)
 */
export function uploadReport(wasm, reports) {
  return guard(wasm, () => wasm.checkUpload(JSON.stringify(reports)));
}

/** Whether an upload's report passes: it has files, and every one passes. */
export function allValid(report) {
  return report.file_set.length > 0 && report.file_set.every((f) => f.csv_valid);
}

/** Runs `f`; a trap in the engine (a bug) becomes an error that says what the engine said. */
function guard(wasm, f) {
  try {
    return f();
  } catch (error) {
    if (error instanceof WebAssembly.RuntimeError) {
      const panic = wasm.lastPanic();
      throw new Error(`the check engine failed (a bug, please report it): ${panic ?? error.message}`);
    }
    throw error;
  }
}
