#!/usr/bin/env bash
# Builds the check engine for the browser and Node into web/dist/ (a build output, not
# committed): the WebAssembly engine and its wasm-bindgen glue (dist/pkg/), the module the site
# imports (checks.mjs), its Worker, the page (index.html) and the Node command (cli.mjs).
#
# Installs what it needs when it is missing: the wasm32-unknown-unknown std target (rustup) and
# wasm-bindgen-cli at the exact version of the wasm-bindgen crate (cargo install, cached outside
# the clone). WDIV_WASM_SIMD=1 builds with WebAssembly SIMD (simd128): on the 149 MB benchmark
# file it measured 3% faster, within the noise, so the default is the scalar build, which every
# browser with WebAssembly runs (docs/browser.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# Keep in step with crates/checks-web/Cargo.toml (wasm-bindgen = "=…"): the CLI refuses a
# module made by another version.
WASM_BINDGEN_VERSION=0.2.130
tools="${WDIV_WASM_BINDGEN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wdiv-wasm-bindgen-$WASM_BINDGEN_VERSION}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
dist="$root/web/dist"

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "installing the wasm32-unknown-unknown target (rustup)"
  rustup target add wasm32-unknown-unknown
fi
if ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION"; then
  echo "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION into $tools (once; about 90 s on 2 cores)"
  # Without default features: no TLS client, which only its test runner's downloads use. A debug
  # build: half the install time of a release one (90 s against 176 s on 2 cores), and it still
  # writes the bindings in 0.4 s. Not --locked: its lock names a webpki-roots the registry
  # may not hold; the CLI's own version is pinned.
  cargo install --quiet --debug --no-default-features --root "$tools" \
    --version "=$WASM_BINDGEN_VERSION" wasm-bindgen-cli
fi

simd_flags=()
if [ "${WDIV_WASM_SIMD:-0}" = 1 ]; then
  simd_flags=(-C target-feature=+simd128)
fi
echo "building crates/checks-web for wasm32-unknown-unknown (release${simd_flags:+, simd128})"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${simd_flags[*]}" \
  cargo build --quiet --release --locked --target wasm32-unknown-unknown \
  --manifest-path crates/checks-web/Cargo.toml --target-dir "$target_dir"

rm -rf "$dist"
mkdir -p "$dist"
"$tools/bin/wasm-bindgen" --target web --out-dir "$dist/pkg" \
  "$target_dir/wasm32-unknown-unknown/release/wdiv_checks_web.wasm"
cp web/src/*.mjs web/src/*.html web/src/*.css "$dist/"
chmod +x "$dist/cli.mjs"

wasm="$dist/pkg/wdiv_checks_web_bg.wasm"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' crates/checks/Cargo.toml | head -1)"
simd=false
[ "${#simd_flags[@]}" -gt 0 ] && simd=true
printf '{"engineVersion":"%s","simd128":%s,"wasmBindgen":"%s"}\n' "$version" "$simd" \
  "$WASM_BINDGEN_VERSION" > "$dist/build.json"
echo "built $dist: engine $(wc -c < "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped (simd128: $simd)"
