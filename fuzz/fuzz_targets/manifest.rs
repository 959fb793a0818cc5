#![no_main]

// See gantry::fuzzing::manifest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::manifest(data));
