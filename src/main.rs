//! The `flowgate` command: `serve` runs the gateway, `validate` compiles a flow definition.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowgate::config::Config;
use flowgate::dialects;

/// How many task polls a busy worker runs between two looks at the sockets and timers
/// (tokio's default: 61).
///
/// At 64 busy connections on the 2-core machine the load generator shares with the server,
/// p99 was 4.5-5.1 ms with the default and 2.1-3.3 ms with 256, throughput unchanged within
/// the noise. With 256 a worker empties its own queue more often, and then takes work from the
/// other worker's queue (1.4 times as many steals) or waits on the sockets (1.6 times as many
/// parks). The likely reason for the shorter tail: connections queued on a worker the kernel
/// has paused (to run the client) are taken over sooner.
/// Measurements: BENCHMARKS.md, "Session of 2026-12-07, night".
const EVENT_INTERVAL: u32 = 256;

/// flowgate: Alibaba fnf and Huawei FunctionGraph workflow APIs on one local engine.
#[derive(Parser, Debug)]
#[command(name = "flowgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Address to listen on (overrides `listen` in the configuration).
        #[arg(long)]
        listen: Option<String>,
        /// Configuration file (default: config/flowgate.toml when it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Compile a flow definition and print the canonical model as JSON, or every error with
    /// its field path.
    Validate {
        /// The definition file.
        file: PathBuf,
        /// The dialect that owns it (default: from its folder name or its content).
        #[arg(long)]
        dialect: Option<String>,
    },
}

/// mimalloc (see `flowgate::alloc`): the engine allocates many small JSON values; glibc malloc
/// spent ~45% of the benchmark's time in malloc/free (perf), mimalloc far less.
#[global_allocator]
static GLOBAL: flowgate::alloc::Allocator = flowgate::alloc::Allocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { listen, config } => serve(listen, config),
        Command::Validate { file, dialect } => validate(&file, dialect.as_deref()),
    }
}

fn serve(listen: Option<String>, config_path: Option<PathBuf>) -> ExitCode {
    let mut config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowgate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(l) = listen {
        config.listen = l;
    }
    init_tracing(&config);
    let addr = match config.listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flowgate: listen: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flowgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flowgate::server::serve(config, addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("FLOWGATE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(config.log.level.as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn validate(file: &std::path::Path, dialect: Option<&str>) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("flowgate: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let all = dialects::registry(&Config::default());
    let folder = file
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str());
    let chosen = match dialect {
        Some(name) => all.iter().find(|d| d.name() == name),
        None => all
            .iter()
            .find(|d| Some(d.name()) == folder)
            .or_else(|| all.iter().find(|d| d.recognizes(file, &text))),
    };
    let Some(d) = chosen else {
        let names: Vec<&str> = all.iter().map(|d| d.name()).collect();
        eprintln!(
            "flowgate: {}: no dialect recognizes this definition; pass --dialect ({})",
            file.display(),
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    match d.compile(name, &text) {
        Ok(flow) => {
            match serde_json::to_string_pretty(&flow) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("flowgate: cannot render the flow: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(issues) => {
            for i in issues {
                eprintln!("{}: {i}", file.display());
            }
            ExitCode::from(1)
        }
    }
}
