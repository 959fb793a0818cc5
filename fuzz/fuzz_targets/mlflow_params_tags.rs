#![no_main]

// See gantry::fuzzing::mlflow_params_tags.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::mlflow_params_tags(data));
