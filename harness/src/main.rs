//! `harness`: the command-line tool of the workspace. Today it runs the demo of the ring layer;
//! the experiment suite (`list`, `run`, `plot`, `report`) lands with the training pipeline.

mod demo;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Secure transformer inference over CKKS: demo and experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows the library at work on built-in defaults (today: the CKKS ring layer at N = 2^16).
    Demo {
        /// log2 of the ring degree.
        #[arg(long, default_value_t = 16)]
        log_n: u32,
        /// Number of RNS primes.
        #[arg(long, default_value_t = 30)]
        limbs: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { log_n, limbs } => demo::run(log_n, limbs),
    }
}
