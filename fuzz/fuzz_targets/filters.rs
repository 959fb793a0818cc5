#![no_main]

// See gantry::fuzzing::filters.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::filters(data));
