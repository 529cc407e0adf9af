// The Web Worker that runs the check engine, so the page stays responsive while a large file is
// read. Messages in: `{type: "version"}`, or `{type: "check", files: File[], options}`.
// Messages out: `{type: "version", version}`, `{type: "progress", index, bytes, total}`,
// `{type: "file", index, report}`, `{type: "done", report}` or `{type: "error", message}`.
import init, * as wasm from "./pkg/wdiv_checks_web.js";
import { checkFile, uploadReport } from "./engine.mjs";

const ready = init({ module_or_path: new URL("./pkg/wdiv_checks_web_bg.wasm", import.meta.url) });

/** Progress is posted at most this often (bytes), and at the end of each file. */
const PROGRESS_EVERY = 1 << 20;

/** Bytes read from a file at a time, into one buffer used again and again. */
const READ_BYTES = 1 << 20;

/**
 * A file's bytes, as an async iterable of chunks. Where the stream is a byte stream (a `File`'s
 * is), each read fills the same buffer, which the engine has copied before the next read: no
 * chunk is left for the garbage collector, so memory stays flat whatever the file's size.
 * Otherwise the stream's own chunks. Stopping early (the verdict is known) cancels the read.
 */
async function* chunksOf(stream) {
  let reader;
  let buffer = null;
  try {
    reader = stream.getReader({ mode: "byob" });
    buffer = new ArrayBuffer(READ_BYTES);
  } catch {
    reader = stream.getReader();
  }
  try {
    for (;;) {
      const { done, value } = await (buffer ? reader.read(new Uint8Array(buffer)) : reader.read());
      if (done) return;
      yield value;
      if (buffer) buffer = value.buffer;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

async function check(files, options) {
  const { fileSetRules = true, ...engineOptions } = options ?? {};
  if (fileSetRules) {
    engineOptions.uploadFiles = files.map((f) => ({ name: f.name, size: f.size }));
  }
  const reports = [];
  for (const [index, file] of files.entries()) {
    let posted = 0;
    const report = await checkFile(wasm, {
      name: file.name,
      size: file.size,
      chunks: chunksOf(file.stream()),
      options: engineOptions,
      onProgress(bytes) {
        if (bytes - posted >= PROGRESS_EVERY) {
          posted = bytes;
          postMessage({ type: "progress", index, bytes, total: file.size });
        }
      },
    });
    postMessage({ type: "progress", index, bytes: file.size, total: file.size });
    postMessage({ type: "file", index, report });
    reports.push(report);
  }
  return JSON.parse(uploadReport(wasm, reports));
}

self.onmessage = async ({ data }) => {
  try {
    await ready;
    if (data.type === "info") {
      postMessage({ type: "info", info: { version: wasm.engineVersion(), ...JSON.parse(wasm.uploadLimits()) } });
    } else if (data.type === "check") {
      postMessage({ type: "done", report: await check(data.files, data.options) });
    }
  } catch (error) {
    postMessage({ type: "error", message: String(error?.message ?? error) });
  }
};
