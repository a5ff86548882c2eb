//! The `--slurm` flags shared by `iclab sweep` and `iclab reproduce` (docs/cluster.md).

use std::path::PathBuf;

use anyhow::Context;

use iclab_experiments::slurm::{self, Resources};

#[derive(clap::Args, Clone, Debug)]
pub struct SlurmArgs {
    /// Hand the training to Slurm: one job-array task per model still to train, then the
    /// evaluation and report as a job after the array (afterok). With --dry-run, write and print the
    /// scripts under <out>/slurm/ and submit nothing. Submitting again resumes (docs/cluster.md).
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition of every job (default: the cluster's).
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Time limit of each array task (Slurm syntax: MINUTES, HH:MM:SS, DAYS-HH); a task that hits
    /// it checkpoints and is resumed by the next submission.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// CPUs per task; each task trains one model with that many threads.
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    pub cpus_per_task: usize,
    /// Memory per task (Slurm syntax, e.g. 4G; default: the cluster's).
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
    /// Generic resources per task, e.g. gpu:1.
    #[arg(long, requires = "slurm")]
    pub gres: Option<String>,
    /// Slurm account to charge.
    #[arg(long, requires = "slurm")]
    pub account: Option<String>,
    /// At most this many array tasks running at once (--array=0-N%M; default: no limit).
    #[arg(long, requires = "slurm", value_parser = crate::at_least_one)]
    pub max_running: Option<usize>,
    /// The iclab binary the jobs run (default: this one); compute nodes must see it at this path.
    #[arg(long, requires = "slurm")]
    pub iclab_bin: Option<PathBuf>,
}

impl SlurmArgs {
    pub fn resources(&self) -> Resources {
        Resources {
            partition: self.partition.clone(),
            time: self.time.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            gres: self.gres.clone(),
            account: self.account.clone(),
            max_running: self.max_running,
        }
    }

    /// The binary the jobs run, absolute.
    pub fn iclab(&self) -> anyhow::Result<PathBuf> {
        match &self.iclab_bin {
            Some(p) => {
                anyhow::ensure!(p.is_file(), "--iclab-bin {}: no such file", p.display());
                std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
            }
            None => std::env::current_exe().context("finding this iclab binary (give --iclab-bin)"),
        }
    }
}

/// Writes (and unless `dry_run`, submits) `p`, printing what it did.
pub fn submit(p: &slurm::Prepared, dry_run: bool) -> anyhow::Result<()> {
    if let Some(w) = slurm::local_filesystem_warning(&p.out) {
        eprintln!("{w}");
    }
    if dry_run {
        slurm::write(p)?;
        print!("{}", slurm::describe(p));
        println!(
            "dry run: scripts written under {}, nothing submitted",
            p.out.join(slurm::SLURM_DIR).display()
        );
        return Ok(());
    }
    let s = slurm::submit(p)?;
    println!("{}", slurm::submitted_text(p, &s));
    println!(
        "results: {} once the collect job ends; `squeue` shows the jobs; submit the same command again to \
         resume what did not finish",
        p.out.display()
    );
    Ok(())
}
