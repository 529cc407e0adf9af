#![no_main]

use libfuzzer_sys::fuzz_target;
use wdiv_s3_trigger::fuzzing;

// JSON snapshots: no panic, and the same findings whatever the pieces.
fuzz_target!(|data: &[u8]| fuzzing::json_snapshot_input(data));
