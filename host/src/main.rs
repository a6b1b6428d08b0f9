//! The `flumen` command line; see [`flumen::cli`].

fn main() -> std::process::ExitCode {
    flumen::cli::main()
}
