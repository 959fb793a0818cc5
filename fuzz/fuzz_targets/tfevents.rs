#![no_main]

// See gantry::fuzzing::tfevents.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::tfevents(data));
