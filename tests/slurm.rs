//! Sharded runs end to end: a study (streamed PGD with a random start, and RDSA) run as 4
//! shards and merged equals the single-process run bit for bit — first with the shards run
//! one after the other here, then on a real single-node Slurm cluster (munged, slurmctld and
//! slurmd on localhost, configured by this test) through `nuisance submit`. The Slurm test
//! skips, saying why, where Slurm is not installed or cannot start (CI installs Debian's
//! `slurm-wlm` and `munge`, see .ci/run).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const NUISANCE: &str = env!("CARGO_BIN_EXE_nuisance");

/// Six files of 200 events (one row group each: 4 shards get files {0,1}, {2}, {3,4}, {5}),
/// a trained model and a reference sample, under `dir`.
const PREP: &str = r#"
let d = dataset("gaussians", #{ n: 300, seed: 100 });
d.write_parquet("data/ref.parquet");
save(train(mlp([20, 8, 1]), d, #{ epochs: 2, seed: 1 }).model, "data/model.safetensors");
for k in 0..6 { dataset("gaussians", #{ n: 200, seed: k }).write_parquet(`data/part_${k}.parquet`); }
"#;

/// The study: streamed PGD with a random start and RDSA over the chain.
const STUDY: &str = r#"
let data = ARGS[0];
let c = chain(data + "/part_*.parquet");
let m = load_model(data + "/model.safetensors");
let r = read_parquet(data + "/ref.parquet");
let u = uncertainty(r, #{ all: #{ abs: 0.6 } });
let s = shard();
print(`shard ${s.index} of ${s.count}: ${c.len} events`);
stream_attack(c, m, u, #{ attack: "pgd", chunk: 100, out: "out/res/pgd.parquet", summary: "out/res/pgd.json",
                          options: #{ eps: 0.6, steps: 3, step: 0.2, random_start: true, seed: 5 } });
stream_attack(c, m, u, #{ attack: "rdsa", chunk: 100, out: "out/res/rdsa.parquet", summary: "out/res/rdsa.json",
                          options: #{ reference: r, k: 1, steps: 8, seed: 6 } });
"#;

fn run(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(NUISANCE).args(args).current_dir(cwd).output().expect("run nuisance");
    assert!(
        out.status.success(),
        "nuisance {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh folder with the data prepared and the study script, and the single-process run
/// of the study in `single/`.
fn prepare(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("nsl_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["data", "single/out", "sharded/out"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("prep.rhai"), PREP).unwrap();
    std::fs::write(root.join("study.rhai"), STUDY).unwrap();
    run(&root, &["run", "prep.rhai", "--quiet", "--allow-write", "data"]);
    let data = root.join("data").display().to_string();
    run(&root.join("single"), &["run", "../study.rhai", "--quiet", "--allow-read", &data, "--", &data]);
    root
}

fn table(p: &Path) -> Vec<RecordBatch> {
    let f = File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

/// The merged files under `sharded/out/res` equal the single run's: every table column and
/// every summary number (the exact sums included).
fn assert_same_results(root: &Path) {
    for name in ["pgd", "rdsa"] {
        let (a, b) =
            (root.join(format!("single/out/res/{name}.parquet")), root.join(format!("sharded/out/res/{name}.parquet")));
        let (ta, tb) = (table(&a), table(&b));
        // each file is one row group of 200 events (larger than the chunk of 100, so a chunk
        // alone): the single run writes 6 row groups, each shard one per file, and the merge
        // keeps them; the reader's batches (1024 rows, across row groups) then match one to one
        let row_groups = |p: &Path| {
            let f = File::open(p).unwrap();
            ParquetRecordBatchReaderBuilder::try_new(f).unwrap().metadata().num_row_groups()
        };
        assert_eq!(row_groups(&a), 6, "{name}");
        assert_eq!(row_groups(&b), 6, "{name}");
        assert_eq!(ta, tb, "{name}: merged table differs from the single run's");
        let events: Vec<i64> = tb
            .iter()
            .flat_map(|b| {
                use arrow_array::cast::AsArray;
                b.column_by_name("event").unwrap().as_primitive::<arrow_array::types::Int64Type>().values().to_vec()
            })
            .collect();
        assert_eq!(events, (0..1200).collect::<Vec<i64>>());
        let read = |p: PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
        let (sa, sb) = (
            read(root.join(format!("single/out/res/{name}.json"))),
            read(root.join(format!("sharded/out/res/{name}.json"))),
        );
        assert_eq!(sa, sb, "{name}: merged summary differs");
        assert!(sa["flipped"].as_u64().unwrap() > 0, "{name} flips nothing; the comparison would be weak");
        assert_eq!(sa["events"].as_u64(), Some(1200));
    }
}

#[test]
fn four_shards_run_one_after_another_merge_into_the_single_run() {
    let root = prepare("local");
    let data = root.join("data").display().to_string();
    let cwd = root.join("sharded");
    for i in 0..4 {
        let shard = format!("{i}/4");
        let out =
            run(&cwd, &["run", "../study.rhai", "--quiet", "--shard", &shard, "--allow-read", &data, "--", &data]);
        // 4 shards of 6 files of 200: the file at p goes to ⌊4p/1200⌋ = 0 0 1 2 2 3
        let n = [400, 200, 400, 200][i];
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("shard {i} of 4: {n} events")));
        assert!(cwd.join(format!("out/res/pgd.shard-{i}-of-4.parquet")).is_file());
    }
    assert!(!cwd.join("out/res/pgd.parquet").exists());
    let out = run(&cwd, &["merge", "--shards", "4"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("merged 4 files"));
    assert_same_results(&root);
    // a merge with a shard missing is refused
    std::fs::remove_file(cwd.join("out/res/rdsa.shard-2-of-4.json")).unwrap();
    let out = Command::new(NUISANCE).args(["merge", "--shards", "4"]).current_dir(&cwd).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard(s) 2 of 4 are missing"));
    let _ = std::fs::remove_dir_all(&root);
}

/// Where a tool is, if on the PATH or in the sbin folders.
fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The daemons of a single-node cluster, stopped on drop.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    munged: PathBuf,
}

impl Cluster {
    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(find(tool).unwrap_or_else(|| PathBuf::from(tool)));
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn logs(&self) -> String {
        ["munged.log", "slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| {
                let t = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(8).collect();
                format!("--- {f}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.cmd("scontrol").arg("shutdown").output();
        let sock = self.dir.join("munge.sock");
        let _ = Command::new(&self.munged).arg("--stop").arg(format!("--socket={}", sock.display())).output();
    }
}

fn output(c: &mut Command) -> Result<String, String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{c:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Starts munged, slurmctld and slurmd for one node on localhost, as the current user, with
/// everything under `dir`; `Err` says why it could not.
fn start_cluster(dir: &Path) -> Result<Cluster, String> {
    let missing: Vec<&str> = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "squeue"]
        .into_iter()
        .filter(|t| find(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!("not installed: {} (Debian: apt-get install slurm-wlm munge)", missing.join(", ")));
    }
    let munged = find("munged").unwrap_or_default();
    std::fs::create_dir_all(dir.join("state")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.join("spool")).map_err(|e| e.to_string())?;
    let user = output(Command::new("id").arg("-un"))?.trim().to_string();
    let host = output(Command::new("hostname").arg("-s"))?.trim().to_string();
    let key = dir.join("munge.key");
    output(
        Command::new(find("mungekey").unwrap_or_default()).arg("--create").arg(format!("--keyfile={}", key.display())),
    )?;
    let sock = dir.join("munge.sock");
    let cluster = Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf"), munged: munged.clone() };
    output(
        Command::new(&munged)
            .arg("--force")
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
            .arg(format!("--log-file={}", dir.join("munged.log").display()))
            .arg(format!("--seed-file={}", dir.join("munged.seed").display())),
    )?;
    // ports of this process, so parallel runs of the test do not meet
    let port = 20_000 + (std::process::id() % 10_000) * 2;
    let d = dir.display();
    let conf = format!(
        "ClusterName=nuisancetest\nSlurmctldHost={host}(127.0.0.1)\nSlurmUser={user}\nSlurmdUser={user}\n\
         SlurmctldPort={port}\nSlurmdPort={}\nAuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={d}/munge.sock\n\
         StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\nSlurmctldPidFile={d}/slurmctld.pid\n\
         SlurmdPidFile={d}/slurmd.pid\nSlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
         ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSchedulerType=sched/builtin\n\
         SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\n\
         JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
         JobCompType=jobcomp/none\nNodeName={host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
         PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
        port + 1
    );
    std::fs::write(&cluster.conf, conf).map_err(|e| e.to_string())?;
    output(cluster.cmd("slurmctld").arg("-i")).map_err(|e| format!("{e}\n{}", cluster.logs()))?;
    output(&mut cluster.cmd("slurmd")).map_err(|e| format!("{e}\n{}", cluster.logs()))?;
    let t0 = Instant::now();
    loop {
        let state = output(cluster.cmd("sinfo").args(["-h", "-o", "%T"])).unwrap_or_default();
        if state.trim() == "idle" {
            return Ok(cluster);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!("the node is '{}' after 30 s, not idle\n{}", state.trim(), cluster.logs()));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn slurm_array_and_merge_job_equal_the_single_run() {
    let root = prepare("slurm");
    let cluster = match start_cluster(&root.join("slurm")) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipping the Slurm test: Slurm cannot start here: {why}");
            let _ = std::fs::remove_dir_all(&root);
            return;
        }
    };
    let data = root.join("data").display().to_string();
    let cwd = root.join("sharded");
    let mut submit = Command::new(NUISANCE);
    submit
        .args([
            "submit",
            "../study.rhai",
            "--shards",
            "4",
            "--slurm-option=--time=10",
            "--allow-read",
            &data,
            "--",
            &data,
        ])
        .current_dir(&cwd)
        .env("SLURM_CONF", &cluster.conf);
    if let Some(bin) = find("sbatch").and_then(|p| p.parent().map(Path::to_path_buf)) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        dirs.push(bin);
        submit.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    let text = output(&mut submit).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let id = |key: &str| -> String {
        text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key} in {text}")).to_string()
    };
    let (array, merge) = (id("array_job_id="), id("merge_job_id="));
    // wait until the merge job has left the queue (the array before it), at most 5 minutes
    let t0 = Instant::now();
    loop {
        let q = output(cluster.cmd("squeue").args(["-h", "-o", "%i %T"])).unwrap_or_default();
        if q.trim().is_empty() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "jobs still queued after 5 min:\n{q}\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
    let state = output(cluster.cmd("scontrol").args(["show", "job", &merge])).unwrap_or_default();
    let logs: String = std::fs::read_dir(cwd.join("out/slurm"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .map(|e| {
                    format!("--- {}\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        state.is_empty() || state.contains("JobState=COMPLETED"),
        "merge job {merge} (after array {array}) did not complete:\n{state}\n{logs}"
    );
    assert!(cwd.join("out/res/pgd.parquet").is_file(), "no merged result; job logs:\n{logs}\n{}", cluster.logs());
    assert_same_results(&root);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn submit_dry_run_prints_the_batch_scripts_and_bad_shards_are_usage_errors() {
    let root = std::env::temp_dir().join(format!("nsl_dry_{}", std::process::id()));
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::write(root.join("study.rhai"), "let s = shard(); print(`shard ${s.index} of ${s.count}`);").unwrap();
    let out = run(&root, &["submit", "study.rhai", "--shards", "3", "--slurm-option=--partition=short", "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("#SBATCH --array=0-2\n"), "{text}");
    assert!(text.contains("#SBATCH --partition=short\n"), "{text}");
    assert!(text.contains("study.rhai --shard ${SLURM_ARRAY_TASK_ID}/3 --seed 0 --quiet\n"), "{text}");
    assert!(text.contains(" merge --shards 3 "), "{text}");
    let out = run(&root, &["submit", "study.rhai", "--shards", "3", "--htcondor", "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("queue 3\n") && text.contains("--shard $(Process)/3"), "{text}");
    assert!(text.contains("PARENT shards CHILD merge"), "{text}");
    // a shard outside 0..N is a usage error (exit 2) saying how shards are numbered
    let out = Command::new(NUISANCE).args(["run", "study.rhai", "--shard", "3/3"]).current_dir(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shards are numbered 0 to 2"));
    let out = run(&root, &["run", "study.rhai", "--shard", "1/3"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("shard 1 of 3"), "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&root);
}
