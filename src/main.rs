fn main() -> std::process::ExitCode {
    gdpr_register::cli::main()
}
