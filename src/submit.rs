//! `nuisance submit`: a sharded study on a batch system.
//!
//! Slurm: a job array with one task per shard, each running `nuisance run SCRIPT --shard
//! $SLURM_ARRAY_TASK_ID/N`, and a merge job that starts when every task succeeded
//! (`--dependency=afterok:ARRAY`) and runs `nuisance merge --shards N` over the write folders.
//! HTCondor: a submit description with `queue N` (the shard is `$(Process)`), one for the
//! merge, and a DAGMan file ordering them (`condor_submit_dag`). The batch scripts name the
//! executable, the script and the working folder by absolute path, so they run the same on
//! any node that shares the file system.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::fsutil::atomic_write_bytes;

/// What to submit.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The job name (the script's file stem).
    pub name: String,
    /// The `nuisance` executable.
    pub exe: PathBuf,
    /// The script.
    pub script: PathBuf,
    /// The folder the jobs run in (the current folder at submission).
    pub workdir: PathBuf,
    /// Number of shards.
    pub shards: usize,
    /// Options of `nuisance run` for every shard (`--seed 3`, `--allow-read …`, …).
    pub run_options: Vec<String>,
    /// Arguments for the script (after `--`).
    pub script_args: Vec<String>,
    /// Folders the shards write into, merged by the merge job.
    pub merge_dirs: Vec<PathBuf>,
    /// Extra `#SBATCH` options (e.g. `--partition=short`), for both jobs.
    pub slurm_options: Vec<String>,
    /// Where the batch scripts and the jobs' logs go.
    pub batch_dir: PathBuf,
}

/// `s` quoted for a POSIX shell (single quotes; a quote inside becomes `'\''`).
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn path(p: &Path) -> String {
    quote(&p.display().to_string())
}

impl Plan {
    /// The command of one shard, with the shard's index given as `shard`: a shell expression
    /// (`${SLURM_ARRAY_TASK_ID}`) or an HTCondor macro (`$(Process)`).
    fn run_line(&self, shard: &str) -> String {
        let mut words = vec![path(&self.exe), "run".into(), path(&self.script)];
        words.push("--shard".into());
        words.push(format!("{shard}/{}", self.shards));
        words.extend(self.run_options.iter().map(|o| quote(o)));
        if !self.script_args.is_empty() {
            words.push("--".into());
            words.extend(self.script_args.iter().map(|a| quote(a)));
        }
        words.join(" ")
    }

    /// The merge command.
    fn merge_words(&self) -> Vec<String> {
        let mut words = vec!["merge".into(), "--shards".into(), self.shards.to_string()];
        words.extend(self.merge_dirs.iter().map(|d| path(d)));
        words
    }

    fn sbatch_header(&self, job: &str, log: &str) -> String {
        let mut s = String::from("#!/bin/sh\n");
        s += &format!("#SBATCH --job-name={}\n", quote(job));
        s += &format!("#SBATCH --chdir={}\n", path(&self.workdir));
        s += &format!("#SBATCH --output={}\n", path(&self.batch_dir.join(log)));
        for o in &self.slurm_options {
            s += &format!("#SBATCH {o}\n");
        }
        s
    }

    /// The Slurm job array: one task per shard.
    pub fn slurm_array(&self) -> String {
        let mut s = self.sbatch_header(&self.name, &format!("{}-%A_%a.log", self.name));
        s += &format!("#SBATCH --array=0-{}\n", self.shards - 1);
        s += "set -e\n";
        s += &format!("exec {}\n", self.run_line("${SLURM_ARRAY_TASK_ID}"));
        s
    }

    /// The Slurm merge job (submitted with `--dependency=afterok:` the array).
    pub fn slurm_merge(&self) -> String {
        let mut s = self.sbatch_header(&format!("{}-merge", self.name), &format!("{}-merge-%j.log", self.name));
        s += "set -e\n";
        s += &format!("exec {} {}\n", path(&self.exe), self.merge_words().join(" "));
        s
    }

    /// HTCondor: the shards' submit description, the merge's, and the DAGMan file that runs
    /// the merge after every shard succeeded (`condor_submit_dag NAME.dag`).
    pub fn htcondor(&self) -> [(String, String); 3] {
        let line = self.run_line("$(Process)");
        let args = line.split_once(' ').map_or(String::new(), |(_, rest)| rest.to_string());
        let common = |log: &str| {
            format!(
                "executable = {}\ninitialdir = {}\noutput = {}\nerror = {}\nlog = {}\n",
                self.exe.display(),
                self.workdir.display(),
                self.batch_dir.join(format!("{log}.out")).display(),
                self.batch_dir.join(format!("{log}.err")).display(),
                self.batch_dir.join(format!("{}.condor.log", self.name)).display(),
            )
        };
        let shards = format!(
            "# {n} shards of {script}: nuisance run --shard $(Process)/{n}\n{c}arguments = \"{a}\"\nqueue {n}\n",
            n = self.shards,
            script = self.script.display(),
            c = common(&format!("{}-$(Cluster)_$(Process)", self.name)),
            a = condor_args(&args),
        );
        let merge = format!(
            "# the merge of the {n} shards' files\n{c}arguments = \"{a}\"\nqueue 1\n",
            n = self.shards,
            c = common(&format!("{}-merge-$(Cluster)", self.name)),
            a = condor_args(&self.merge_words().join(" ")),
        );
        let sub = |k: &str| self.batch_dir.join(format!("{}{k}.sub", self.name)).display().to_string();
        let dag = format!("JOB shards {}\nJOB merge {}\nPARENT shards CHILD merge\n", sub(""), sub("-merge"));
        [
            (sub(""), shards),
            (sub("-merge"), merge),
            (self.batch_dir.join(format!("{}.dag", self.name)).display().to_string(), dag),
        ]
    }

    /// Writes the Slurm scripts into the batch folder and submits them with `sbatch`:
    /// returns the array's and the merge job's ids.
    pub fn submit_slurm(&self) -> Result<(String, String)> {
        let array = self.batch_dir.join(format!("{}.sbatch", self.name));
        let merge = self.batch_dir.join(format!("{}-merge.sbatch", self.name));
        atomic_write_bytes(&array, self.slurm_array().as_bytes())?;
        atomic_write_bytes(&merge, self.slurm_merge().as_bytes())?;
        let id = sbatch(&[], &array)?;
        let merge_id = sbatch(&[format!("--dependency=afterok:{id}"), "--kill-on-invalid-dep=yes".into()], &merge)?;
        Ok((id, merge_id))
    }
}

/// A string as HTCondor's new-style `arguments` wants it inside double quotes: `"` doubled;
/// the shell quotes (`'…'`) group words the same way.
fn condor_args(s: &str) -> String {
    s.replace('"', "\"\"")
}

/// Runs `sbatch --parsable OPTIONS FILE` and returns the job id it printed.
fn sbatch(options: &[String], file: &Path) -> Result<String> {
    let out = Command::new("sbatch").arg("--parsable").args(options).arg(file).output().map_err(|e| {
        Error::io(
            "sbatch",
            format!("{e} (is Slurm installed and `sbatch` on the PATH? `--dry-run` prints the scripts instead)"),
        )
    })?;
    if !out.status.success() {
        return Err(Error::io(
            file,
            format!("sbatch refused the job ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `ID` or `ID;CLUSTER`
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::io(file, format!("sbatch printed no job id: '{}'", text.trim())));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "study".into(),
            exe: "/opt/bin/nuisance".into(),
            script: "/home/u/my study.rhai".into(),
            workdir: "/home/u".into(),
            shards: 4,
            run_options: vec!["--seed".into(), "3".into(), "--quiet".into()],
            script_args: vec!["it's".into()],
            merge_dirs: vec!["/home/u/out".into()],
            slurm_options: vec!["--time=01:00:00".into()],
            batch_dir: "/home/u/out/slurm".into(),
        }
    }

    #[test]
    fn slurm_scripts_run_one_shard_per_task_and_merge_all() {
        let p = plan();
        let a = p.slurm_array();
        assert!(a.contains("#SBATCH --array=0-3\n"), "{a}");
        assert!(a.contains("#SBATCH --time=01:00:00\n"), "{a}");
        assert!(a.contains("#SBATCH --chdir=/home/u\n"), "{a}");
        assert!(
            a.contains(
                "exec /opt/bin/nuisance run '/home/u/my study.rhai' --shard ${SLURM_ARRAY_TASK_ID}/4 --seed 3 \
                 --quiet -- 'it'\\''s'\n"
            ),
            "{a}"
        );
        let m = p.slurm_merge();
        assert!(m.contains("exec /opt/bin/nuisance merge --shards 4 /home/u/out\n"), "{m}");
        assert!(!m.contains("--array"), "{m}");
    }

    #[test]
    fn htcondor_queues_the_shards_and_a_dag_orders_the_merge() {
        let [(_, shards), (_, merge), (_, dag)] = plan().htcondor();
        assert!(shards.contains("queue 4\n") && shards.contains("--shard $(Process)/4 --seed 3"), "{shards}");
        assert!(shards.contains("executable = /opt/bin/nuisance\n"), "{shards}");
        assert!(merge.contains("arguments = \"merge --shards 4 /home/u/out\""), "{merge}");
        assert!(dag.contains("PARENT shards CHILD merge"), "{dag}");
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("plain/path-1.rhai"), "plain/path-1.rhai");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm)"), "'$(rm)'");
    }
}
