//! `edgefn`: parses the command line and hands over to the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use gateway::commands;
use gateway::config::{default_functions_dir, Overrides};

#[derive(Parser)]
#[command(
    name = "edgefn",
    version,
    about = "An edge gateway for serverless functions that authenticates before any function runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// edgefn.toml to read (keys documented in README.md and deploy/edgefn.toml).
        #[arg(long, env = "EDGEFN_CONFIG")]
        config: Option<PathBuf>,
        /// Functions tree to serve; overrides server.functions_dir.
        /// Default: ./functions when present, else examples/functions.
        #[arg(long)]
        functions: Option<PathBuf>,
        /// Public address, e.g. 127.0.0.1:8080 (port 0 picks a free one); overrides server.listen.
        #[arg(long)]
        listen: Option<String>,
        /// Admin address for /metrics, /healthz, /readyz; overrides admin.listen.
        #[arg(long)]
        admin_listen: Option<String>,
    },
    /// Load and validate the config and every function, print the route table; exit 1 listing every error.
    Check {
        /// edgefn.toml to read.
        #[arg(long, env = "EDGEFN_CONFIG")]
        config: Option<PathBuf>,
        /// Functions tree to check; overrides server.functions_dir.
        #[arg(long)]
        functions: Option<PathBuf>,
    },
    /// Print the OpenAPI 3.1 document of every route.
    Openapi {
        /// Functions tree; default ./functions when present, else examples/functions.
        #[arg(long)]
        functions: Option<PathBuf>,
    },
    /// Turn another platform's function definitions into a functions tree.
    Import {
        /// The platform: openfaas (a stack.yml).
        #[arg(value_parser = ["openfaas"])]
        platform: String,
        /// The stack file.
        stack: PathBuf,
        /// Where to write one folder per function.
        #[arg(long)]
        out: PathBuf,
    },
    /// Read a key on stdin and print the digest form for key files (--basic: read user:password, print a PBKDF2 user line).
    HashKey {
        /// Produce a `user:hash` line for auth type "basic".
        #[arg(long)]
        basic: bool,
        /// With --basic: the user name; stdin then holds only the password.
        #[arg(long, requires = "basic")]
        user: Option<String>,
        /// Without --basic: print a whole keys_file line, `<id> sha256:<hex>`.
        #[arg(long, conflicts_with = "basic")]
        id: Option<String>,
    },
}

fn main() {
    let code = match Cli::parse().command {
        Command::Serve {
            config,
            functions,
            listen,
            admin_listen,
        } => commands::serve(
            config,
            Overrides {
                functions_dir: functions,
                listen,
                admin_listen,
            },
        ),
        Command::Check { config, functions } => commands::check(
            config,
            Overrides {
                functions_dir: functions,
                ..Overrides::default()
            },
            &mut std::io::stdout(),
        ),
        Command::Openapi { functions } => commands::openapi(
            &functions.unwrap_or_else(default_functions_dir),
            &mut std::io::stdout(),
        ),
        Command::Import { stack, out, .. } => {
            commands::import_openfaas(&stack, &out, &mut std::io::stdout())
        }
        Command::HashKey { basic, user, id } => {
            commands::hash_key(basic, user.as_deref(), id.as_deref())
        }
    };
    std::process::exit(code);
}
