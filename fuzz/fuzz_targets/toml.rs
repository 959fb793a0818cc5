#![no_main]

// See gantry::fuzzing::toml_files.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::toml_files(data));
