//! The `amber` binary: CLI client, `amber daemon`, and internal sub-modes.

fn main() {
    std::process::exit(amber::cli::main());
}
