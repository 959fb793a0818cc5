#![no_main]

// See gantry::fuzzing::metric_line.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::metric_line(data));
