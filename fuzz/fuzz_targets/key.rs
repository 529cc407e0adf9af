#![no_main]

use libfuzzer_sys::fuzz_target;
use wdiv_s3_trigger::fuzzing;

// Keys as events carry them and as decoded text: accepted or refused, never a panic.
fuzz_target!(|data: &[u8]| fuzzing::key_input(data));
