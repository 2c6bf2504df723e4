//! The fast paths give the same bits as the plain ones:
//! - the streaming fast path, `Dag::step`: Mock1 stepped one bar at a time gives the
//!   batch run's predictions to the bit, and once its buffers have grown to the
//!   largest step (a night's collapsed bins), a step allocates nothing. Allocations
//!   are counted by this binary's global allocator, on the test's own thread;
//! - batch on several threads (kernels split by asset) equals batch on one.

use kf_dataflow::mock1::{Mock1Params, dag};
use kf_dataflow::nodes::sources::FrameSource;
use kf_dataflow::{Dag, Node, NodeId, Phase, Ports, RunContext, RunOptions};
use kf_frame::{Frame, Timestamp, parse_tz};
use kf_testkit::allocations;

#[global_allocator]
static GLOBAL: kf_testkit::Counting = kf_testkit::Counting;

const MIN: i64 = 60_000_000_000;

/// `days` weekdays of 09:31-16:00 New York one-minute bars for `assets` assets: a
/// random walk of `close` and a positive `volume`.
fn bars(assets: usize, days: usize) -> Frame {
    let tz = parse_tz("America/New_York").expect("a known zone");
    let mut ts = Vec::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2018, 3, 5).expect("a date");
    let mut done = 0;
    while done < days {
        use chrono::Datelike;
        if day.weekday().number_from_monday() <= 5 {
            let open = Timestamp::parse_in(&format!("{day} 09:31"), tz)
                .expect("09:31 exists")
                .nanos();
            ts.extend((0..390).map(|k| open + k * MIN));
            done += 1;
        }
        day = day.succ_opt().expect("dates go on");
    }
    let (mut close, mut volume) = (Vec::new(), Vec::new());
    let mut price = vec![50.0f64; assets];
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for _ in &ts {
        for p in price.iter_mut() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            *p *= 1.0 + 0.003 * u;
            close.push(*p);
            volume.push(100.0 + (s % 1000) as f64);
        }
    }
    Frame::new(
        ts.clone(),
        ts,
        (0..assets).map(|a| format!("S{a:03}")).collect(),
        vec![("close".into(), close), ("volume".into(), volume)],
    )
    .expect("a valid frame")
}

fn mock1(frame: Frame) -> Dag {
    let params = Mock1Params {
        max_gap: Some("1h".into()),
        ..Mock1Params::default()
    };
    dag(Box::new(FrameSource::new("read_data", frame)), &params).expect("Mock1 builds")
}

#[test]
fn a_step_in_steady_state_allocates_nothing_and_equals_the_batch() {
    let frame = bars(40, 5);
    let times = frame.end_ts().to_vec();
    let mut batch_dag = mock1(frame.clone());
    let batch = batch_dag
        .run(
            &RunContext::new(Phase::Predict, None),
            &RunOptions::default(),
        )
        .expect("Mock1 runs");
    let batch = batch.df_out("predict").expect("the sink").clone();

    let mut dag = mock1(frame);
    assert!(dag.can_step(), "Mock1's nodes all have the fast path");
    let mut lo = i64::MIN;
    let mut row = 0;
    let mut counted_steps = 0;
    let mut total = 0;
    for (k, &t) in times.iter().enumerate() {
        let ctx = RunContext::new(Phase::Predict, Some((lo, t)));
        // Two days grow the buffers to a night's step; the next three are counted.
        let warm = k >= 2 * 390;
        let (stepped, n) = allocations(|| dag.step(&ctx));
        stepped.expect("a step");
        if warm {
            total += n;
            counted_steps += 1;
        }
        lo = t + 1;
        let rows = dag.stepped("predict").expect("stepped rows");
        if rows.n_rows() > 0 {
            let got = rows.to_frame().expect("valid rows");
            let want = batch.slice(row, got.n_rows()).expect("in range");
            assert!(got.bit_eq(&want), "rows from {row} differ from the batch's");
            row += got.n_rows();
        }
    }
    assert_eq!(row, batch.n_rows(), "every batch row was stepped");
    assert!(counted_steps > 1000);
    assert_eq!(
        total, 0,
        "{total} allocations over {counted_steps} steps in steady state"
    );
}

/// A node without the fast path: it only runs.
struct RunOnly(NodeId);

impl Node for RunOnly {
    fn id(&self) -> &NodeId {
        &self.0
    }
    fn kind(&self) -> &str {
        "run_only"
    }
    fn memory(&self) -> kf_dataflow::Memory {
        kf_dataflow::Memory::Row
    }
    fn run(&mut self, _: &RunContext, inputs: &Ports) -> kf_dataflow::Result<Ports> {
        Ok(inputs.clone())
    }
}

#[test]
fn a_dag_with_a_node_that_cannot_step_says_which() {
    let mut dag = mock1(bars(3, 1));
    dag.append_to_tail(Box::new(RunOnly(NodeId::from("mine"))))
        .expect("appends");
    assert!(!dag.can_step());
    let e = dag
        .step(&RunContext::new(Phase::Predict, None))
        .expect_err("cannot step")
        .to_string();
    assert!(
        e.contains("`mine` (run_only)") && e.contains("Dag::run"),
        "{e}"
    );
    assert!(dag.stepped("predict").is_err());
}

#[test]
fn a_batch_on_three_threads_equals_one_on_one_thread_to_the_bit() {
    // 300 assets x 3 days: every kernel, down to the predictions on 5-minute bins,
    // takes its parallel path (65,536 cells or more).
    let frame = bars(300, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| {
            let mut dag = mock1(frame.clone());
            let opts = RunOptions {
                keep: kf_dataflow::Keep::All,
                ..RunOptions::default()
            };
            dag.run(&RunContext::new(Phase::Predict, None), &opts)
                .expect("Mock1 runs")
        })
    };
    let (one, three) = (run(1), run(3));
    assert!(one.outputs.len() >= 8, "every node's output is kept");
    for (node, ports) in &one.outputs {
        for (port, f) in ports {
            let g = &three.outputs[node][port];
            assert!(f.n_rows() * f.n_assets() >= 65_536 || node.as_str() != "predict");
            assert!(
                f.bit_eq(g),
                "node `{node}` port `{port}` differs on 3 threads"
            );
        }
    }
}
