#![no_main]

// See gantry::fuzzing::rest_body.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::rest_body(data));
