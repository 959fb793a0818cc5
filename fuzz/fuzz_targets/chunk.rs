#![no_main]

// See gantry::fuzzing::chunk.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::chunk(data));
