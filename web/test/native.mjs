// Where the repository and the native binary are, for the tests and the benchmark.
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root. */
export const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/**
 * The native binary of `profile` ("debug" for the tests, "release" for the benchmark):
 * WDIV_NATIVE_CHECK when set, otherwise under $CARGO_TARGET_DIR or target/.
 */
export function nativeBinary(profile) {
  return (
    process.env.WDIV_NATIVE_CHECK ??
    join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), profile, "wdiv-s3-trigger")
  );
}
