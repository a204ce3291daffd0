#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tributary_core::testing::fuzz::s3_event(data));
