#![no_main]

// See gantry::fuzzing::prometheus_text.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::prometheus_text(data));
