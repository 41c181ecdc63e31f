fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(codex_fleet::cli::main())
}
