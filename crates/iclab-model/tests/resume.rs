//! Exact resume: a run killed after its last checkpoint, or stopped by Ctrl-C, and then
//! started again with the same command, gives the losses and parameters of an uninterrupted run,
//! bit for bit; and the thread count does not change a bit either.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use common::{bits, fresh_dir, small_config};
use iclab_model::checkpoint::{self, Checkpoint};
use iclab_model::train::{read_metrics, train, Record, TrainOptions};

const STEPS: u64 = 30;

fn final_state(run: &std::path::Path) -> Checkpoint {
    let (step, path) = checkpoint::latest(run).unwrap().expect("a checkpoint");
    assert_eq!(step, STEPS);
    Checkpoint::load(&path).unwrap()
}

fn assert_same_run(a: &std::path::Path, b: &std::path::Path) {
    let (ma, mb) = (
        std::fs::read_to_string(a.join("metrics.jsonl")).unwrap(),
        std::fs::read_to_string(b.join("metrics.jsonl")).unwrap(),
    );
    // Every step logged once, in order, and the files equal byte for byte (losses included).
    let steps: Vec<u64> = read_metrics(&b.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter_map(|r| match r {
            Record::Train { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (0..STEPS).collect::<Vec<_>>());
    assert_eq!(ma, mb, "metrics differ");
    let (ca, cb) = (final_state(a), final_state(b));
    assert_eq!(bits(&ca.params), bits(&cb.params), "parameters differ");
    assert_eq!(bits(&ca.m), bits(&cb.m), "first moments differ");
    assert_eq!(bits(&ca.v), bits(&cb.v), "second moments differ");
}

#[test]
fn killed_then_resumed_equals_uninterrupted_bit_for_bit() {
    let cfg = small_config(STEPS);
    let straight = fresh_dir("resume-straight");
    let s = train(&cfg, &straight, &TrainOptions::default()).unwrap();
    assert_eq!((s.steps_done, s.resumed_from, s.stopped_early), (STEPS, None, false));

    // Killed after step 17: the last checkpoint is step 15, and the metrics of steps 15 and 16 were
    // written after it (they must be replaced, not duplicated). The curriculum grows at step 10
    // and again at 20, so the resume crosses a change of d and n.
    let killed = fresh_dir("resume-killed");
    let s = train(
        &cfg,
        &killed,
        &TrainOptions {
            stop_after: Some(17),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((s.steps_done, s.stopped_early), (17, true));
    assert_eq!(checkpoint::latest(&killed).unwrap().unwrap().0, 15);
    let s = train(&cfg, &killed, &TrainOptions::default()).unwrap();
    assert_eq!((s.steps_done, s.resumed_from), (STEPS, Some(15)));
    assert_same_run(&straight, &killed);

    // Ctrl-C: the stop flag is honoured after the current step with a checkpoint at that step.
    let stopped = fresh_dir("resume-ctrlc");
    let flag = Arc::new(AtomicBool::new(true));
    let s = train(
        &cfg,
        &stopped,
        &TrainOptions {
            stop: Some(flag),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((s.steps_done, s.stopped_early), (1, true));
    assert_eq!(checkpoint::latest(&stopped).unwrap().unwrap().0, 1);
    let s = train(&cfg, &stopped, &TrainOptions::default()).unwrap();
    assert_eq!(s.resumed_from, Some(1));
    assert_same_run(&straight, &stopped);

    // Asking for more steps than a finished run has: nothing to redo, nothing changes.
    let again = train(&cfg, &straight, &TrainOptions::default()).unwrap();
    assert_eq!((again.steps_done, again.resumed_from), (STEPS, Some(STEPS)));
    assert_same_run(&straight, &killed);
}

#[test]
fn one_and_two_threads_give_the_same_run() {
    let cfg = small_config(STEPS);
    let run_with = |threads: usize, name: &str| {
        let dir = fresh_dir(name);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| train(&cfg, &dir, &TrainOptions::default())).unwrap();
        dir
    };
    let one = run_with(1, "threads-1");
    let two = run_with(2, "threads-2");
    assert_same_run(&one, &two);
}
