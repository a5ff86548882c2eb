//! One writer per run folder: a second writer is refused at once naming the holder's PID, and the
//! lock goes with the process that held it, however it ends.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fresh_dir, small_config};
use iclab_model::lock::{DirLock, LOCK_FILE};
use iclab_model::train::{train, TrainOptions};

/// Sets the stop flag when dropped, so that a failed assertion does not leave a training running.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until `dir`'s lock file holds a PID (its holder has started).
fn wait_for_holder(dir: &Path) -> u32 {
    let t0 = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(dir.join(LOCK_FILE))
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return pid;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no holder of {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_second_training_into_a_run_folder_is_refused_naming_the_pid() {
    let dir = fresh_dir("lock-two-trainings");
    let cfg = small_config(1_000_000);
    let stop = Arc::new(AtomicBool::new(false));
    let opts = TrainOptions {
        stop: Some(stop.clone()),
        ..TrainOptions::default()
    };
    std::thread::scope(|s| {
        let first = s.spawn(|| train(&cfg, &dir, &opts));
        let _guard = StopOnDrop(stop.clone());
        let pid = wait_for_holder(&dir);
        assert_eq!(pid, std::process::id());
        let e = format!("{:#}", train(&cfg, &dir, &TrainOptions::default()).unwrap_err());
        assert!(e.contains(&format!("{} is in use by PID {pid}", dir.display())), "{e}");
        stop.store(true, Ordering::SeqCst);
        let s = first.join().unwrap().unwrap();
        assert!(s.stopped_early && s.last_checkpoint.is_some());
    });
    // Released: the run resumes (and stops after one step).
    let again = TrainOptions {
        stop: Some(Arc::new(AtomicBool::new(true))),
        ..TrainOptions::default()
    };
    let s = train(&cfg, &dir, &again).unwrap();
    assert!(s.resumed_from.is_some() && s.stopped_early);
}

/// Not a test: holds the lock of `$ICLAB_LOCK_HELPER_DIR` until killed (run by the test below as
/// a child process).
#[test]
#[ignore = "a helper process of lock_is_released_when_its_holder_is_killed"]
fn hold_lock_helper() {
    let Ok(dir) = std::env::var("ICLAB_LOCK_HELPER_DIR") else {
        return;
    };
    let _lock = DirLock::acquire(Path::new(&dir)).unwrap();
    println!("LOCKED");
    std::thread::sleep(Duration::from_secs(300));
}

#[test]
fn lock_is_released_when_its_holder_is_killed() {
    let dir = fresh_dir("lock-killed-holder");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "hold_lock_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ICLAB_LOCK_HELPER_DIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("LOCKED"))),
        "the helper did not take the lock"
    );
    let refused = train(&small_config(5), &dir, &TrainOptions::default());
    // SIGKILL: no destructor runs; the OS releases the lock.
    child.kill().unwrap();
    child.wait().unwrap();
    let e = format!("{:#}", refused.unwrap_err());
    assert!(e.contains(&format!("is in use by PID {}", child.id())), "{e}");
    let s = train(&small_config(5), &dir, &TrainOptions::default()).unwrap();
    assert_eq!(s.steps_done, 5);
}
