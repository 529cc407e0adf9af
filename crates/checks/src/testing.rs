//! What the unit tests share.

/// How many cases a property test runs: `thorough`, the count it was written with, when `CI` is
/// set (`.ci/run` sets it) or `WDIV_THOROUGH=1`; a tenth of it otherwise, so that the default
/// `cargo test -p wdiv-checks` takes seconds. The properties and their assertions are the same
/// either way: only how many random inputs each one sees changes.
pub(crate) fn cases(thorough: u32) -> u32 {
    if thorough_mode() {
        thorough
    } else {
        (thorough / 10).max(1)
    }
}

/// Whether `CI` or `WDIV_THOROUGH` is set to something other than empty, `0` or `false`.
fn thorough_mode() -> bool {
    let on =
        |name: &str| std::env::var(name).is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    on("CI") || on("WDIV_THOROUGH")
}
