#![no_main]

use libfuzzer_sys::fuzz_target;
use wdiv_s3_trigger::fuzzing;

fuzz_target!(|data: &[u8]| {
    fuzzing::settings_file(data);
});
