fn main() -> std::process::ExitCode {
    gantry::cli::main()
}
