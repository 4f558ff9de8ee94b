//! The `nuisance` command: run scripts, check them, browse the docs, or explore in the REPL.
//!
//! Exit status: 0 success, 1 script error, 2 usage error. Writing into a closed pipe
//! (`nuisance run x.rhai | head`) ends the process quietly, as for other command-line tools
//! (killed by SIGPIPE: status 141 in a shell).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use nuisance::session::{Config, Session};

#[derive(Parser)]
#[command(
    name = "nuisance",
    version,
    about = "Probe classifiers with perturbations inside the experiment's uncertainties"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script.
    Run {
        /// The .rhai script.
        file: PathBuf,
        #[command(flatten)]
        opts: SessionArgs,
        /// Arguments for the script (visible as ARGS).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Start the interactive REPL (the default with no command).
    Repl {
        #[command(flatten)]
        opts: SessionArgs,
    },
    /// Compile a script without running it and report every syntax error.
    Check {
        /// The .rhai script.
        file: PathBuf,
    },
    /// Measure speed; prints one JSON object per line.
    Bench {
        /// Benchmarks to run (all when omitted).
        names: Vec<String>,
        /// Folder with the reference events and model (e.g. ../shared/fixtures).
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
        /// Repetitions per figure (the median is printed).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// List the benchmarks and exit.
        #[arg(long)]
        list: bool,
    },
    /// Show the signature, options and doc comment of script functions.
    Doc {
        /// A function name (all functions when omitted).
        name: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone, Default)]
struct SessionArgs {
    /// Session seed: every random choice without its own seed derives from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Allow reading under PATH (repeatable).
    #[arg(long = "allow-read", value_name = "PATH")]
    allow_read: Vec<PathBuf>,
    /// Allow writing under PATH (repeatable; default: ./out).
    #[arg(long = "allow-write", value_name = "PATH")]
    allow_write: Vec<PathBuf>,
    /// Shrink example sizes (what the tests use).
    #[arg(long)]
    smoke: bool,
    /// Limit on script operations (loops in Rhai; Rust numerics do not count).
    #[arg(long, value_name = "N")]
    max_operations: Option<u64>,
    /// Memory budget of the session: datasets and large buffers count against it
    /// (e.g. 4G, 512M; default: half the physical memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
    /// Stop the run after this many seconds (in the REPL: each entry).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<std::time::Duration>,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    nuisance::memory::parse_size(s)
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

impl SessionArgs {
    fn config(&self, script_dir: Option<PathBuf>, args: Vec<String>) -> Config {
        Config {
            seed: self.seed,
            script_dir,
            allow_read: self.allow_read.clone(),
            allow_write: self.allow_write.clone(),
            args,
            smoke: self.smoke || std::env::var_os("NUISANCE_SMOKE").is_some(),
            capture: false,
            progress: !self.quiet,
            max_operations: self.max_operations,
            max_memory: self.max_memory,
            timeout: self.timeout,
            ..Config::default()
        }
    }
}

fn main() -> ExitCode {
    // candle's double backward (Hessian-vector products) needs this before any thread starts.
    std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let code = match cli.command.unwrap_or(Command::Repl { opts: SessionArgs::default() }) {
        Command::Run { file, opts, args } => run(&file, &opts, args),
        Command::Repl { opts } => repl(&opts),
        Command::Check { file } => check(&file),
        Command::Doc { name, json } => doc(name.as_deref(), json),
        Command::Bench { names, fixtures, repeats, list } => bench(&names, fixtures, repeats, list),
    };
    ExitCode::from(code)
}

/// Rust ignores SIGPIPE, so printing into a closed pipe panics ("failed printing to stdout:
/// Broken pipe"); restoring the default action ends the process silently instead.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called at the start of main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn start(config: Config) -> Result<Session, u8> {
    Session::new(config).map_err(|e| {
        eprintln!("error: {e}");
        2
    })
}

fn install_ctrl_c(session: &Session) {
    let flag = session.control().interrupt.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            // A second Ctrl-C while the first is still being handled: leave now, without
            // leaving half-written temporary files behind.
            nuisance::fsutil::remove_pending_temps();
            std::process::exit(130);
        }
    });
}

fn run(file: &std::path::Path, opts: &SessionArgs, args: Vec<String>) -> u8 {
    if !file.is_file() {
        eprintln!("error: no script at '{}'", file.display());
        return 2;
    }
    let dir = file.parent().map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() });
    let Ok(mut session) = start(opts.config(dir, args)) else { return 2 };
    install_ctrl_c(&session);
    match session.run_file(file) {
        Ok(()) => 0,
        Err(e) => {
            eprint!("{e}");
            1
        }
    }
}

fn repl(opts: &SessionArgs) -> u8 {
    let Ok(mut session) = start(opts.config(None, Vec::new())) else { return 2 };
    install_ctrl_c(&session);
    nuisance::repl::run(&mut session) as u8
}

fn check(file: &std::path::Path) -> u8 {
    // only a regular file: reading a named pipe would block
    let text = match nuisance::io_guard::read_regular(file)
        .and_then(|b| String::from_utf8(b).map_err(|e| nuisance::Error::format(file, e.to_string())))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read '{}': {e}", file.display());
            return 2;
        }
    };
    let Ok(mut session) = start(Config::default()) else { return 2 };
    session.set_main_name(&file.display().to_string());
    let errors = session.check_source(&text);
    for e in &errors {
        eprint!("{e}");
    }
    if errors.is_empty() {
        println!("{}: ok", file.display());
        0
    } else {
        eprintln!("{}: {} syntax error(s)", file.display(), errors.len());
        1
    }
}

fn doc(name: Option<&str>, json: bool) -> u8 {
    let Ok(session) = start(Config::default()) else { return 2 };
    let all = nuisance::docs::collect(session.engine());
    let selected: Vec<&nuisance::docs::FnDoc> = match name {
        Some(n) => nuisance::docs::find(&all, n),
        None => all.iter().collect(),
    };
    if selected.is_empty() {
        eprintln!("{}", nuisance::docs::help_text(&all, name.unwrap_or("")));
        return 1;
    }
    // Write errors (a closed pipe, e.g. `nuisance doc | head`) end the listing quietly.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = if json {
        let v: Vec<serde_json::Value> = selected.iter().map(|d| d.to_json()).collect();
        writeln!(out, "{}", serde_json::Value::Array(v))
    } else if name.is_some() {
        write!(out, "{}", nuisance::docs::help_text(&all, name.unwrap_or("")))
    } else {
        selected.iter().try_for_each(|d| writeln!(out, "{:<55} {}", d.signature, d.summary()))
    };
    0
}

fn bench(names: &[String], fixtures: Option<PathBuf>, repeats: usize, list: bool) -> u8 {
    if list {
        for b in nuisance::bench::all() {
            println!("{:<16} {}", b.name, b.about);
        }
        return 0;
    }
    let cfg = nuisance::bench::BenchConfig { fixtures, repeats };
    match nuisance::bench::run(names, &cfg, |line| println!("{line}")) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            if e.kind() == "bad_argument" {
                2
            } else {
                1
            }
        }
    }
}
