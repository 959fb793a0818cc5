#![no_main]

// See gantry::fuzzing::mlflow_metrics.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gantry::fuzzing::mlflow_metrics(data));
