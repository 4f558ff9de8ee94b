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
        /// Run shard I of N (from 0): every chain the script opens reads only the shard's
        /// share of its files and row groups, and every file written gets `.shard-I-of-N`
        /// before its extension (`nuisance merge` joins them).
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<nuisance::data::chain::Shard>,
        /// Arguments for the script (visible as ARGS).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Join the files of a sharded run: Parquet per-event tables (in event order) and
    /// summary JSON files (exact merge).
    Merge {
        /// With --shards N: the folders to search (default: out). Otherwise the output file
        /// followed by the input files.
        files: Vec<PathBuf>,
        /// Merge every group NAME.shard-I-of-N.EXT found under the folders into NAME.EXT.
        #[arg(long, value_name = "N")]
        shards: Option<usize>,
    },
    /// Run a script as N shards on Slurm (a job array and a dependent merge job), or print
    /// the batch scripts (--dry-run), or an HTCondor submit description (--htcondor --dry-run).
    Submit {
        /// The .rhai script.
        file: PathBuf,
        /// Number of shards (array tasks).
        #[arg(long, value_name = "N")]
        shards: usize,
        /// An extra #SBATCH option for both jobs, e.g. --slurm-option=--time=01:00:00 (repeatable).
        #[arg(long = "slurm-option", value_name = "OPTION", allow_hyphen_values = true)]
        slurm_option: Vec<String>,
        /// Print the batch scripts instead of submitting them.
        #[arg(long)]
        dry_run: bool,
        /// HTCondor instead of Slurm (with --dry-run: prints the submit description files and
        /// the DAG that runs the merge after the shards).
        #[arg(long)]
        htcondor: bool,
        /// Where the batch scripts and logs go (default: slurm/ in the first write folder).
        #[arg(long, value_name = "DIR")]
        batch_dir: Option<PathBuf>,
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

fn parse_shard(s: &str) -> Result<nuisance::data::chain::Shard, String> {
    nuisance::data::chain::Shard::parse(s).map_err(|e| e.to_string())
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
        Command::Run { file, opts, shard, args } => run(&file, &opts, shard, args),
        Command::Merge { files, shards } => merge(&files, shards),
        Command::Submit { file, shards, slurm_option, dry_run, htcondor, batch_dir, opts, args } => {
            let s = SubmitArgs { shards, slurm_option, dry_run, htcondor, batch_dir };
            submit(&file, &s, &opts, args)
        }
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

fn run(
    file: &std::path::Path,
    opts: &SessionArgs,
    shard: Option<nuisance::data::chain::Shard>,
    args: Vec<String>,
) -> u8 {
    if !file.is_file() {
        eprintln!("error: no script at '{}'", file.display());
        return 2;
    }
    let dir = file.parent().map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() });
    let config = Config { shard, ..opts.config(dir, args) };
    let Ok(mut session) = start(config) else { return 2 };
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

fn merge(files: &[PathBuf], shards: Option<usize>) -> u8 {
    let result = match shards {
        Some(n) => {
            let dirs = if files.is_empty() { vec![PathBuf::from("out")] } else { files.to_vec() };
            dirs.iter().try_for_each(|d| {
                let (merged, skipped) = nuisance::merge::merge_shards(d, n)?;
                for (out, inputs) in merged {
                    println!("{}: merged {} files", out.display(), inputs.len());
                }
                for s in skipped {
                    eprintln!("note: {} not merged (only Parquet tables and summary JSON files merge)", s.display());
                }
                Ok(())
            })
        }
        None => match files.split_first() {
            Some((out, inputs)) if !inputs.is_empty() => nuisance::merge::merge(out, inputs)
                .map(|()| println!("{}: merged {} files", out.display(), inputs.len())),
            _ => {
                eprintln!("error: merge needs OUT and at least one input file (or --shards N [DIR...])");
                return 2;
            }
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

struct SubmitArgs {
    shards: usize,
    slurm_option: Vec<String>,
    dry_run: bool,
    htcondor: bool,
    batch_dir: Option<PathBuf>,
}

impl SessionArgs {
    /// The options of `nuisance run` that reproduce these settings in a batch job.
    fn run_options(&self) -> Vec<String> {
        let mut o = vec!["--seed".to_string(), self.seed.to_string()];
        for p in &self.allow_read {
            o.push(format!("--allow-read={}", absolute(p).display()));
        }
        for p in &self.allow_write {
            o.push(format!("--allow-write={}", absolute(p).display()));
        }
        if self.smoke {
            o.push("--smoke".into());
        }
        if let Some(n) = self.max_operations {
            o.push(format!("--max-operations={n}"));
        }
        if let Some(b) = self.max_memory {
            o.push(format!("--max-memory={b}"));
        }
        if let Some(t) = self.timeout {
            o.push(format!("--timeout={}", t.as_secs_f64()));
        }
        // batch logs have no terminal: no progress bars
        o.push("--quiet".into());
        o
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
}

fn submit(file: &std::path::Path, s: &SubmitArgs, opts: &SessionArgs, args: Vec<String>) -> u8 {
    if !file.is_file() {
        eprintln!("error: no script at '{}'", file.display());
        return 2;
    }
    if s.shards == 0 || s.shards > nuisance::data::chain::shard::MAX_SHARDS {
        eprintln!("error: --shards must be 1 to {}, got {}", nuisance::data::chain::shard::MAX_SHARDS, s.shards);
        return 2;
    }
    if s.htcondor && !s.dry_run {
        eprintln!("error: --htcondor only prints the submit description (add --dry-run), then submit it with condor_submit_dag");
        return 2;
    }
    let (Ok(exe), Ok(script)) = (std::env::current_exe(), std::fs::canonicalize(file)) else {
        eprintln!("error: cannot resolve the nuisance executable or the script path");
        return 2;
    };
    let workdir = absolute(std::path::Path::new("."));
    let merge_dirs: Vec<PathBuf> = if opts.allow_write.is_empty() {
        vec![workdir.join("out")]
    } else {
        opts.allow_write.iter().map(|p| absolute(p)).collect()
    };
    let batch_dir = s.batch_dir.as_ref().map(|d| absolute(d)).unwrap_or_else(|| merge_dirs[0].join("slurm"));
    let name = script.file_stem().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "nuisance".into());
    let plan = nuisance::submit::Plan {
        name,
        exe,
        script,
        workdir,
        shards: s.shards,
        run_options: opts.run_options(),
        script_args: args,
        merge_dirs,
        slurm_options: s.slurm_option.clone(),
        batch_dir,
    };
    if s.dry_run {
        if s.htcondor {
            for (path, text) in plan.htcondor() {
                println!("# ---- {path}\n{text}");
            }
        } else {
            println!("# ---- job array (sbatch)\n{}", plan.slurm_array());
            println!("# ---- merge job (sbatch --dependency=afterok:ARRAY_ID)\n{}", plan.slurm_merge());
        }
        return 0;
    }
    match plan.submit_slurm() {
        Ok((array, merge)) => {
            println!("submitted job array {array} ({} shards) and merge job {merge} (after all succeed)", s.shards);
            println!("array_job_id={array}");
            println!("merge_job_id={merge}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
