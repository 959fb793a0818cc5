# gantry's everyday commands. CI runs .ci/run, which needs no just.

# Open the workbench on the workspace in use
run *ARGS:
    cargo run --release -- {{ARGS}}

# Build a demo workspace and open the workbench on it
demo *ARGS:
    cargo run --release -- demo {{ARGS}}

# The README's test command
test:
    cargo test

# Formatting and lints, as CI checks them
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Speed: medians over repeated runs (see benches/)
bench:
    cargo bench

# Everything CI runs
ci:
    bash .ci/run

# Build what scripts/device-check.sh runs on a GPU machine (which has no Rust): target/device/
device-check:
    bash scripts/build-device-check.sh
