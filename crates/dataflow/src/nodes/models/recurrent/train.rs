//! Training a recurrent forecaster on candle: seeded initialization, Adam on
//! shuffled minibatches, gradient clipping by global norm, early stopping on a
//! validation tail, and data-parallel replicas whose gradients are averaged in a
//! fixed order.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::rnn::{GRU, GRUConfig, LSTM, LSTMConfig, RNN};
use candle_nn::{AdamW, Linear, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use kf_parallel::collective::Collective;

use super::kernel::{Cell, Net, Scratch};

/// Training windows: `x` is `[n][steps][inputs]`, `y` one target per window, both
/// normalized; in time order (the validation tail is the last windows).
#[derive(Debug, Default)]
pub struct Samples {
    /// Inputs.
    pub x: Vec<f64>,
    /// Targets.
    pub y: Vec<f64>,
    /// Time steps per window.
    pub steps: usize,
    /// Features per step.
    pub inputs: usize,
}

impl Samples {
    /// The number of windows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The cell.
    pub cell: Cell,
    /// Hidden units.
    pub hidden: usize,
    /// Passes over the training windows at most.
    pub epochs: usize,
    /// Windows per minibatch.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// The share of windows, the latest, held out for early stopping.
    pub validation: f64,
    /// Largest global norm of a minibatch's gradient (0: no clipping).
    pub clip: f64,
    /// Seeds the initial weights and the shuffles.
    pub seed: u64,
    /// Data-parallel replicas: each minibatch is cut into this many shards, each
    /// shard's gradient computed on its own thread, and the gradients averaged in
    /// shard order, weighted by shard size (the mean gradient of the minibatch).
    /// Under an installed [`Collective`] of W ranks, the minibatch is cut into
    /// `replicas x W` shards, rank r computing shards `r x replicas ..`; the average
    /// is the same bits as `replicas x W` replicas in one process.
    pub replicas: usize,
    /// The CUDA device to train on (feature `cuda`), or `None` for the CPU.
    pub cuda: Option<usize>,
}

/// The device of a training run.
fn device(cuda: Option<usize>) -> Result<Device, String> {
    match cuda {
        None => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        Some(n) => Device::new_cuda(n).map_err(|e| format!("cannot open CUDA device {n}: {e}")),
        #[cfg(not(feature = "cuda"))]
        Some(n) => Err(format!(
            "device cuda:{n} asked for, but this build has no CUDA support: rebuild with \
             `--features cuda`"
        )),
    }
}

/// What training gave.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The network with the weights of the best validation loss.
    pub net: Net,
    /// Mean squared error on the training windows at the best epoch.
    pub train_loss: f64,
    /// Mean squared error on the validation windows at the best epoch (NaN without).
    pub validation_loss: f64,
    /// Epochs run.
    pub epochs: usize,
}

fn err(e: candle_core::Error) -> String {
    e.to_string()
}

enum Layer {
    Lstm(LSTM),
    Gru(GRU),
}

struct Model {
    varmap: VarMap,
    layer: Layer,
    head: Linear,
    hidden: usize,
    cell: Cell,
    inputs: usize,
}

impl Model {
    fn new(s: &TrainSettings, inputs: usize, dev: &Device) -> candle_core::Result<Model> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, dev);
        let layer = match s.cell {
            Cell::Lstm => Layer::Lstm(candle_nn::rnn::lstm(
                inputs,
                s.hidden,
                LSTMConfig::default(),
                vb.pp("rnn"),
            )?),
            Cell::Gru => Layer::Gru(candle_nn::rnn::gru(
                inputs,
                s.hidden,
                GRUConfig::default(),
                vb.pp("rnn"),
            )?),
        };
        let head = candle_nn::linear(s.hidden, 1, vb.pp("head"))?;
        // candle's own initialization draws from an unseeded generator: every weight
        // is drawn again here, in name order, from the seed (PyTorch's uniform range).
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        let bound = 1.0 / (s.hidden as f64).sqrt();
        for (_, var) in sorted(&varmap) {
            let n = var.elem_count();
            let values: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            var.set(&Tensor::from_vec(values, var.shape(), dev)?)?;
        }
        Ok(Model {
            varmap,
            layer,
            head,
            hidden: s.hidden,
            cell: s.cell,
            inputs,
        })
    }

    /// Forecasts for `x`: `[b, steps, inputs]` -> `[b]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let last = match &self.layer {
            Layer::Lstm(l) => l
                .seq(x)?
                .pop()
                .map(|s| s.h)
                .ok_or_else(|| candle_core::Error::Msg("a window of no steps".into()))?,
            Layer::Gru(g) => g
                .seq(x)?
                .pop()
                .map(|s| s.h)
                .ok_or_else(|| candle_core::Error::Msg("a window of no steps".into()))?,
        };
        self.head.forward(&last)?.squeeze(1)
    }

    fn values(&self, name: &str) -> candle_core::Result<Vec<f64>> {
        let data =
            self.varmap.data().lock().map_err(|_| {
                candle_core::Error::Msg("the model's variables are poisoned".into())
            })?;
        let var = data
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))?;
        var.as_tensor().flatten_all()?.to_vec1::<f64>()
    }

    fn net(&self) -> candle_core::Result<Net> {
        let b_out = self.values("head.bias")?;
        Ok(Net {
            cell: self.cell,
            inputs: self.inputs,
            hidden: self.hidden,
            w_ih: self.values("rnn.weight_ih_l0")?,
            w_hh: self.values("rnn.weight_hh_l0")?,
            b_ih: self.values("rnn.bias_ih_l0")?,
            b_hh: self.values("rnn.bias_hh_l0")?,
            w_out: self.values("head.weight")?,
            b_out: b_out.first().copied().unwrap_or(0.0),
        })
    }
}

/// The model's variables in name order (a `HashMap` has none).
fn sorted(varmap: &VarMap) -> Vec<(String, Var)> {
    let mut all: Vec<(String, Var)> = match varmap.data().lock() {
        Ok(d) => d.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(_) => Vec::new(),
    };
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn batch(s: &Samples, idx: &[usize], dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let per = s.steps * s.inputs;
    let mut x = Vec::with_capacity(idx.len() * per);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(&s.x[i * per..(i + 1) * per]);
        y.push(s.y[i]);
    }
    Ok((
        Tensor::from_vec(x, (idx.len(), s.steps, s.inputs), dev)?,
        Tensor::from_vec(y, idx.len(), dev)?,
    ))
}

/// Windows per chunk of a loss evaluation.
const LOSS_CHUNK: usize = 512;

/// Mean squared error over `idx`, in chunks of [`LOSS_CHUNK`] windows, through our
/// forward pass (candle would record every intermediate tensor of every step for a
/// backward pass that never comes: gigabytes of fresh pages per epoch). Chunk `i`
/// is computed by worker `i mod workers`, and the chunks' sums are added in chunk
/// order, so the result does not depend on the number of workers.
fn mse(m: &Model, s: &Samples, idx: &[usize], workers: &Workers<'_>) -> candle_core::Result<f64> {
    if idx.is_empty() {
        return Ok(f64::NAN);
    }
    let net = m.net()?;
    let chunks: Vec<&[usize]> = idx.chunks(LOSS_CHUNK).collect();
    let total_workers = workers.total();
    let first = workers.rank() * workers.replicas;
    // This rank's replicas, each with the chunks it owns.
    let owned: Vec<Vec<usize>> = (first..first + workers.replicas)
        .map(|w| (w..chunks.len()).step_by(total_workers).collect())
        .collect();
    let per = s.steps * s.inputs;
    let sums = on_threads(workers.pool.as_ref(), &owned, |mine| {
        let (mut soa, mut out, mut scratch) = (Vec::new(), Vec::new(), Scratch::default());
        let mut sums = Vec::with_capacity(mine.len());
        for &i in mine {
            let chunk = chunks[i];
            let b = chunk.len();
            // [window][step][input] -> [step][input][window].
            soa.clear();
            soa.resize(per * b, 0.0);
            for (j, &w) in chunk.iter().enumerate() {
                for (k, &v) in s.x[w * per..(w + 1) * per].iter().enumerate() {
                    soa[k * b + j] = v;
                }
            }
            out.clear();
            out.resize(b, 0.0);
            net.forward(&soa, b, s.steps, &mut scratch, &mut out);
            let mut total = 0.0;
            for (o, &w) in out.iter().zip(chunk) {
                let d = o - s.y[w];
                total += d * d;
            }
            sums.push((i, total));
        }
        Ok(sums)
    })?;
    let mut local = vec![0.0f64; chunks.len()];
    for (i, v) in sums.into_iter().flatten() {
        local[i] = v;
    }
    let all = workers.gather(local)?;
    let rank_of = |i: usize| (i % total_workers) / workers.replicas;
    let mut total = 0.0;
    for i in 0..chunks.len() {
        total += all[rank_of(i) * chunks.len() + i];
    }
    Ok(total / idx.len() as f64)
}

/// Trains a network on `samples`.
///
/// # Errors
/// A message for an empty training set or a failed tensor operation.
pub fn train(samples: &Samples, s: &TrainSettings) -> Result<Trained, String> {
    let dev = device(s.cuda)?;
    // Under `mpirun` with a collective installed, the ranks train one model together.
    let turn = kf_parallel::collective::current();
    let replicas = s.replicas.max(1);
    let pool = if replicas > 1 {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(replicas)
                .thread_name(|i| format!("kf-replica-{i}"))
                .build()
                .map_err(|e| format!("cannot start {replicas} replica threads: {e}"))?,
        )
    } else {
        None
    };
    let workers = Workers {
        replicas,
        pool,
        group: turn.as_deref().filter(|g| g.size() > 1),
    };
    let n = samples.len();
    let held = ((n as f64) * s.validation.clamp(0.0, 0.9)).floor() as usize;
    let fit_n = n - held;
    if fit_n == 0 {
        return Err(format!(
            "no training windows are left after holding out {held} for validation"
        ));
    }
    let model = Model::new(s, samples.inputs, &dev).map_err(err)?;
    let vars: Vec<Var> = sorted(&model.varmap).into_iter().map(|(_, v)| v).collect();
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: s.learning_rate,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )
    .map_err(err)?;
    let val: Vec<usize> = (fit_n..n).collect();
    let mut order: Vec<usize> = (0..fit_n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x5eed_5eed);
    let mut best: Option<(f64, Vec<Tensor>, f64)> = None;
    let mut since_best = 0;
    let mut epochs = 0;
    for _ in 0..s.epochs.max(1) {
        epochs += 1;
        order.shuffle(&mut rng);
        for mb in order.chunks(s.batch_size.max(1)) {
            let grads = gradient(&model, samples, mb, &vars, &workers, &dev).map_err(err)?;
            let grads = clipped(grads, &vars, s.clip).map_err(err)?;
            opt.step(&grads).map_err(err)?;
        }
        let train_loss = mse(&model, samples, &order, &workers).map_err(err)?;
        let val_loss = mse(&model, samples, &val, &workers).map_err(err)?;
        let score = if val.is_empty() { train_loss } else { val_loss };
        if !score.is_finite() {
            return Err(format!(
                "training diverged at epoch {epochs} (loss {score}); lower learning_rate or \
                 set clip"
            ));
        }
        let better = best.as_ref().is_none_or(|(b, _, _)| score < *b);
        if better {
            let snapshot = vars
                .iter()
                .map(|v| v.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(err)?;
            best = Some((score, snapshot, train_loss));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= s.patience.max(1) {
                break;
            }
        }
    }
    let Some((score, snapshot, train_loss)) = best else {
        return Err("no epoch ran".into());
    };
    for (v, t) in vars.iter().zip(&snapshot) {
        v.set(t).map_err(err)?;
    }
    Ok(Trained {
        net: model.net().map_err(err)?,
        train_loss,
        validation_loss: if val.is_empty() { f64::NAN } else { score },
        epochs,
    })
}

/// Who computes what: the replicas of this process, times the ranks of the installed
/// collective (one process and no collective: `ranks = 1`).
struct Workers<'a> {
    /// Threads of this process.
    replicas: usize,
    /// Their pool, when there is more than one.
    pool: Option<rayon::ThreadPool>,
    /// The collective of the ranks, when there is more than one.
    group: Option<&'a dyn Collective>,
}

impl Workers<'_> {
    fn rank(&self) -> usize {
        self.group.map_or(0, |g| g.rank())
    }

    fn ranks(&self) -> usize {
        self.group.map_or(1, |g| g.size())
    }

    /// Workers in all: shards of a minibatch, owners of loss chunks.
    fn total(&self) -> usize {
        self.replicas * self.ranks()
    }

    /// Gathers every rank's `local` (the same length on each) in rank order.
    fn gather(&self, local: Vec<f64>) -> candle_core::Result<Vec<f64>> {
        match self.group {
            None => Ok(local),
            Some(g) => g
                .all_gather(&local)
                .map_err(|e| candle_core::Error::Msg(e.to_string())),
        }
    }
}

/// Runs `f` on each of `items` (at most one item per replica) on the replicas' pool
/// when there are several, and returns the results in order.
///
/// The pool lives for the whole training: threads spawned per minibatch would each
/// start with an empty allocator heap, and fresh pages cost more than the gradient.
fn on_threads<T: Sync, R: Send>(
    pool: Option<&rayon::ThreadPool>,
    items: &[T],
    f: impl Fn(&T) -> candle_core::Result<R> + Sync,
) -> candle_core::Result<Vec<R>> {
    use rayon::prelude::*;
    match pool {
        Some(p) if items.len() > 1 => p.install(|| items.par_iter().map(&f).collect()),
        _ => items.iter().map(&f).collect(),
    }
}

/// The minibatch's mean gradient. The minibatch is cut into one shard per worker
/// (replica x rank); each worker computes its shard's gradient times
/// `shard / minibatch`, every rank gathers all of them, and each sums them in shard
/// order. The sum is therefore the same on every rank, and the same for R replicas on
/// one rank as for one replica on each of R ranks.
fn gradient(
    m: &Model,
    s: &Samples,
    mb: &[usize],
    vars: &[Var],
    workers: &Workers<'_>,
    dev: &Device,
) -> candle_core::Result<candle_core::backprop::GradStore> {
    let per_shard = mb.len().div_ceil(workers.total()).max(1);
    let shards: Vec<&[usize]> = mb.chunks(per_shard).collect();
    let one = |idx: &[usize]| -> candle_core::Result<candle_core::backprop::GradStore> {
        let (x, y) = batch(s, idx, dev)?;
        let loss = (m.forward(&x)? - y)?.sqr()?.mean_all()?;
        loss.backward()
    };
    if workers.total() == 1 {
        return one(mb);
    }
    let sizes: Vec<usize> = vars.iter().map(|v| v.elem_count()).collect();
    let params: usize = sizes.iter().sum();
    // This rank's shards: positions rank*R .. rank*R + R (some may not exist when the
    // minibatch has fewer windows than workers).
    let first = workers.rank() * workers.replicas;
    let mine: Vec<(usize, &[usize])> = (first..first + workers.replicas)
        .filter_map(|i| shards.get(i).map(|sh| (i, *sh)))
        .collect();
    let stores = on_threads(workers.pool.as_ref(), &mine, |(_, idx)| one(idx))?;
    // Each local slot holds one shard's weighted gradient, variables in order.
    let mut local = vec![0.0f64; workers.replicas * params];
    for (slot, ((_, idx), g)) in mine.iter().zip(&stores).enumerate() {
        let w = idx.len() as f64 / mb.len() as f64;
        let mut at = slot * params;
        for (v, &n) in vars.iter().zip(&sizes) {
            if let Some(gv) = g.get(v.as_tensor()) {
                let values = gv.flatten_all()?.to_vec1::<f64>()?;
                for (o, x) in local[at..at + n].iter_mut().zip(&values) {
                    *o = x * w;
                }
            }
            at += n;
        }
    }
    let all = workers.gather(local)?;
    // A store to carry the sums (`GradStore` has no public constructor): this rank's
    // first shard's, or, on a rank with no shard, one window's.
    let mut out = match stores.into_iter().next() {
        Some(g) => g,
        None => one(&mb[..1])?,
    };
    let mut at = 0;
    for (v, &n) in vars.iter().zip(&sizes) {
        let mut sum = vec![0.0f64; n];
        for i in 0..shards.len() {
            let seg = &all[i * params + at..i * params + at + n];
            if i == 0 {
                sum.copy_from_slice(seg);
            } else {
                for (acc, x) in sum.iter_mut().zip(seg) {
                    *acc += x;
                }
            }
        }
        out.insert(v.as_tensor(), Tensor::from_vec(sum, v.shape(), dev)?);
        at += n;
    }
    Ok(out)
}

/// Scales the gradient down to global norm `clip` when it is larger.
fn clipped(
    mut grads: candle_core::backprop::GradStore,
    vars: &[Var],
    clip: f64,
) -> candle_core::Result<candle_core::backprop::GradStore> {
    if clip <= 0.0 {
        return Ok(grads);
    }
    let mut sq = 0.0;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f64>()?;
        }
    }
    let norm = sq.sqrt();
    if norm > clip {
        let k = clip / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * k)?);
            }
        }
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cell: Cell) -> TrainSettings {
        TrainSettings {
            cell,
            hidden: 6,
            epochs: 1,
            batch_size: 8,
            learning_rate: 1e-3,
            patience: 1,
            validation: 0.0,
            clip: 1.0,
            seed: 3,
            replicas: 1,
            cuda: None,
        }
    }

    /// Our kernel against candle's forward pass on the same weights, and against
    /// itself one window at a time.
    #[test]
    fn our_forward_pass_matches_candles_and_does_not_depend_on_the_batch() {
        let (b, steps, inputs) = (37, 9, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x: Vec<f64> = (0..b * steps * inputs)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        for cell in [Cell::Lstm, Cell::Gru] {
            let dev = Device::Cpu;
            let m = Model::new(&settings(cell), inputs, &dev).unwrap();
            let t = Tensor::from_vec(x.clone(), (b, steps, inputs), &dev).unwrap();
            let theirs = m.forward(&t).unwrap().to_vec1::<f64>().unwrap();
            let net = m.net().unwrap();
            assert!(net.well_formed());
            // [window][step][input] -> [step][input][window].
            let mut soa = vec![0.0; x.len()];
            for j in 0..b {
                for s in 0..steps {
                    for k in 0..inputs {
                        soa[(s * inputs + k) * b + j] = x[(j * steps + s) * inputs + k];
                    }
                }
            }
            let mut ours = vec![0.0; b];
            net.forward(&soa, b, steps, &mut Scratch::default(), &mut ours);
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-9, "{cell:?}: largest difference {worst}");
            assert!(ours.iter().any(|v| v.abs() > 1e-3), "{ours:?}");
            for j in 0..b {
                let one: Vec<f64> = (0..steps * inputs).map(|i| soa[i * b + j]).collect();
                let mut out = [0.0];
                net.forward(&one, 1, steps, &mut Scratch::default(), &mut out);
                assert_eq!(out[0].to_bits(), ours[j].to_bits(), "{cell:?} window {j}");
            }
        }
    }
}
