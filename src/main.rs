//! The `ringway` command line: parses arguments and hands off to [`ringway::app`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `ringway --version`: the package version and the commit it was built from, e.g.
/// `0.1.0 (b4446bd)`, `0.1.0 (b4446bd-dirty)`, or `0.1.0 (unknown)` outside a git checkout
/// (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RINGWAY_COMMIT"), ")");

/// An HTTPS load balancer: TLS termination, HTTP/1.1, pinned per-core io_uring workers.
#[derive(Parser)]
#[command(name = "ringway", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the load balancer, from a config file or from flags.
    Run(RunArgs),
    /// Validate a config file (certificates and keys included) and exit.
    Check(CheckArgs),
    /// Run a self-contained demo: self-signed certificate, two demo backends on loopback.
    Demo {
        /// Where the demo listens.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Worker threads (default: every core the process may run on).
        #[arg(long)]
        workers: Option<usize>,
    },
}

/// `ringway check FILE` or `ringway check --config FILE`: exactly one of the two.
#[derive(Args)]
#[command(group = ArgGroup::new("file").required(true).args(["path", "config"]))]
struct CheckArgs {
    /// The TOML config file.
    #[arg(value_name = "FILE")]
    path: Option<PathBuf>,
    /// The TOML config file (the same as FILE, in the form `run` takes).
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl CheckArgs {
    fn file(self) -> PathBuf {
        // The required group without `multiple` guarantees exactly one of the two.
        self.path
            .or(self.config)
            .expect("clap requires FILE or --config")
    }
}

#[derive(Args)]
struct RunArgs {
    /// The TOML config file (excludes the quick-start flags).
    #[arg(long, short, conflicts_with_all = ["listen", "cert", "key", "backend"])]
    config: Option<PathBuf>,
    /// Quick start: the address to listen on, e.g. 0.0.0.0:443.
    #[arg(long, required_unless_present = "config")]
    listen: Option<SocketAddr>,
    /// Quick start: a PEM certificate chain (repeat for several certificates; the first is the default).
    #[arg(long, required_unless_present = "config")]
    cert: Vec<PathBuf>,
    /// Quick start: the PEM private key of the --cert at the same position.
    #[arg(long, required_unless_present = "config")]
    key: Vec<PathBuf>,
    /// Quick start: a backend address (repeat for several).
    #[arg(long, required_unless_present = "config")]
    backend: Vec<SocketAddr>,
    /// Worker threads (default: every core the process may run on).
    #[arg(long)]
    workers: Option<usize>,
    /// Quick start: the balancing policy: round_robin, weighted_round_robin, random,
    /// least_connections, peak_ewma or consistent_hash (by client address).
    #[arg(long, conflicts_with = "config")]
    policy: Option<ringway::config::Policy>,
    /// Quick start: check every backend with `GET <PATH>` (2xx/3xx passes) every 5 s.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    health_path: Option<String>,
    /// Serve binary upgrades on this Unix socket: a successor started with `--upgrade` takes
    /// the listening sockets over from this process, which then drains and exits.
    #[arg(long, value_name = "PATH", requires = "config")]
    upgrade_socket: Option<PathBuf>,
    /// Take the listening sockets over from the ringway serving `--upgrade-socket`.
    #[arg(long, requires = "upgrade_socket")]
    upgrade: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => match args.config {
            Some(path) => ringway::app::run_config_file(
                &path,
                args.workers,
                args.upgrade_socket.map(|socket| ringway::app::Upgrade {
                    socket,
                    take_over: args.upgrade,
                }),
            ),
            None => ringway::app::run_quick(ringway::app::QuickStart {
                listen: args.listen,
                certs: args.cert,
                keys: args.key,
                backends: args.backend,
                workers: args.workers,
                policy: args.policy,
                health_path: args.health_path,
            }),
        },
        Command::Check(args) => ringway::app::check(&args.file()),
        Command::Demo { listen, workers } => ringway::app::demo(listen, workers),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway: {e}");
            ExitCode::FAILURE
        }
    }
}
