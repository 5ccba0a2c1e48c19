use clap::Parser;

fn main() -> std::process::ExitCode {
    gatehouse::cli::run(gatehouse::cli::Cli::parse())
}
