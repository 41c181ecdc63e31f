fn main() -> std::process::ExitCode {
    // Like every Unix filter: a closed stdout (`codex-fleet scan | head`) ends the process
    // quietly instead of panicking on the write.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::ExitCode::from(codex_fleet::cli::main())
}
