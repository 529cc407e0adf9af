#![no_main]

use libfuzzer_sys::fuzz_target;
use wdiv_s3_trigger::fuzzing;

// S3 events, and any JSON through `event::from_value` (the Lambda payload: S3's shape and
// EventBridge's once it is read there).
fuzz_target!(|data: &[u8]| {
    fuzzing::event(data);
});
