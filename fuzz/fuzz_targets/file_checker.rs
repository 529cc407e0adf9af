#![no_main]

use libfuzzer_sys::fuzz_target;
use wdiv_s3_trigger::fuzzing;

// The file checker over arbitrary bytes and chunking: no panic, and the same report for 1-byte
// pieces, 64 KiB pieces and split points drawn from the input (see `fuzzing::file_checker_input`).
fuzz_target!(|data: &[u8]| fuzzing::file_checker_input(data));
