//! Training, evaluation and range recording, generic over burn backends (the harness uses the CPU
//! backend, burn-ndarray; a CUDA backend can be added behind a feature, see shared/GPU.md).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpoint, CheckpointError};
use super::nn::{Forward, RangeTarget, Transformer};
use super::sites::{PolySet, Range, RangeRecord, SiteKind};
use crate::data::ImageSet;

/// The CPU training backend.
pub type CpuTrain = burn::backend::Autodiff<burn::backend::NdArray>;
/// The CPU inference backend.
pub type Cpu = burn::backend::NdArray;

/// Range- and variance-minimisation settings (stage 2): loss = task + alpha L_range + beta L_var.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RangeLoss {
    /// Weight of the activation range penalty.
    pub alpha: f64,
    /// Weight of the LayerNorm variance penalty.
    pub beta: f64,
    /// Activation inputs should stay within `[-act_bound, act_bound]`.
    pub act_bound: f64,
    /// LayerNorm `var + eps` should stay below this.
    pub var_bound: f64,
}

/// Optimiser and schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training data.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Linear warm-up over this fraction of all steps, then cosine decay to `lr / 100`.
    pub warmup: f64,
    /// Global-norm gradient clipping.
    pub clip: f64,
    /// Seed of the initialisation and of the shuffling.
    pub seed: u64,
    /// A log line every this many steps.
    pub log_every: usize,
    /// Range/variance minimisation (stage 2), if any.
    pub range: Option<RangeLoss>,
}

impl TrainConfig {
    /// The learning rate at `step` of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let warm = ((self.warmup * total as f64).round() as usize).max(1);
        if step < warm {
            return self.lr * (step + 1) as f64 / warm as f64;
        }
        let t = (step - warm) as f64 / (total.saturating_sub(warm)).max(1) as f64;
        let min = self.lr / 100.0;
        min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }
}

/// Training and evaluation data of one task.
#[derive(Debug, Clone)]
pub enum TaskData {
    /// Images, normalised `(x - mean) / std` with the training set's statistics.
    Images {
        /// Training images.
        train: ImageSet,
        /// Held-out images.
        test: ImageSet,
        /// Pixel mean used for normalisation.
        mean: f32,
        /// Pixel standard deviation used for normalisation.
        std: f32,
    },
    /// Token streams cut into windows of `seq_len + 1`.
    Tokens {
        /// Training token ids.
        train: Vec<u32>,
        /// Held-out token ids.
        test: Vec<u32>,
        /// Context length.
        seq_len: usize,
    },
}

impl TaskData {
    /// Images with normalisation statistics from the training set.
    pub fn images(train: ImageSet, test: ImageSet) -> Self {
        let px = train.pixels();
        let n = px.len().max(1) as f64;
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = px.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        TaskData::Images {
            train,
            test,
            mean: mean as f32,
            std: var.sqrt().max(1e-6) as f32,
        }
    }

    fn len(&self, test: bool) -> usize {
        match self {
            TaskData::Images { train, test: t, .. } => {
                if test {
                    t.len()
                } else {
                    train.len()
                }
            }
            TaskData::Tokens {
                train,
                test: t,
                seq_len,
            } => {
                let s = if test { t } else { train };
                s.len().saturating_sub(1) / seq_len
            }
        }
    }
}

/// One batch on a device.
enum Batch<B: Backend> {
    Images(Tensor<B, 4>, Tensor<B, 1, Int>),
    Tokens(Tensor<B, 2, Int>, Tensor<B, 2, Int>),
}

/// Normalised pixels of images `idx` as `[n, c, s, s]` data.
pub fn image_batch_data(set: &ImageSet, idx: &[usize], mean: f32, std: f32) -> TensorData {
    let (c, h, w) = (set.channels(), set.height(), set.width());
    let mut px = Vec::with_capacity(idx.len() * c * h * w);
    for &i in idx {
        if let Some(img) = set.image(i) {
            px.extend(img.iter().map(|&v| (v - mean) / std));
        }
    }
    TensorData::new(px, [idx.len(), c, h, w])
}

fn make_batch<B: Backend>(data: &TaskData, test: bool, idx: &[usize], device: &B::Device) -> Batch<B> {
    match data {
        TaskData::Images {
            train,
            test: t,
            mean,
            std,
        } => {
            let set = if test { t } else { train };
            let x = Tensor::from_data(image_batch_data(set, idx, *mean, *std), device);
            let y: Vec<i64> = idx.iter().map(|&i| set.label(i).unwrap_or(0) as i64).collect();
            Batch::Images(x, Tensor::from_data(TensorData::new(y, [idx.len()]), device))
        }
        TaskData::Tokens {
            train,
            test: t,
            seq_len,
        } => {
            let s = if test { t } else { train };
            let l = *seq_len;
            let mut x = Vec::with_capacity(idx.len() * l);
            let mut y = Vec::with_capacity(idx.len() * l);
            for &w in idx {
                let start = w * l;
                x.extend(s[start..start + l].iter().map(|&v| v as i64));
                y.extend(s[start + 1..start + l + 1].iter().map(|&v| v as i64));
            }
            Batch::Tokens(
                Tensor::from_data(TensorData::new(x, [idx.len(), l]), device),
                Tensor::from_data(TensorData::new(y, [idx.len(), l]), device),
            )
        }
    }
}

/// Summed cross-entropy (mean over predictions) and the number of correct predictions.
fn batch_loss<B: Backend>(
    model: &Transformer<B>,
    batch: Batch<B>,
    f: &mut Forward<B>,
) -> (Tensor<B, 1>, Tensor<B, 2>, Tensor<B, 1, Int>) {
    let (logits, y) = match batch {
        Batch::Images(x, y) => (model.forward_images(x, f), y),
        Batch::Tokens(x, y) => {
            let logits = model.forward_tokens(x, f);
            let [b, l, v] = logits.dims();
            (logits.reshape([b * l, v]), y.reshape([b * l]))
        }
    };
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits.clone(), y.clone());
    (loss, logits, y)
}

/// Held-out metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean cross-entropy (nats per prediction).
    pub loss: f64,
    /// Top-1 accuracy in [0, 1].
    pub accuracy: f64,
    /// `exp(loss)` (language models).
    pub perplexity: f64,
    /// Predictions scored.
    pub count: usize,
    /// Whether any logit was NaN or infinite.
    pub non_finite: bool,
    /// Share of the predictions in evaluation batches whose loss was not finite (a polynomial fed an
    /// input outside its interval can blow up on a few items and make `loss` NaN).
    #[serde(default)]
    pub non_finite_share: f64,
    /// `exp` of the mean loss over the batches whose loss was finite (equal to `perplexity` when
    /// `non_finite_share` is 0).
    #[serde(default)]
    pub finite_perplexity: f64,
}

/// Evaluates on the held-out split (or the first `limit` items of it) with exact functions or the
/// polynomials, in inference mode (BatchNorm running statistics).
pub fn evaluate<B: Backend>(
    model: &Transformer<B>,
    data: &TaskData,
    polys: Option<&PolySet>,
    batch: usize,
    limit: Option<usize>,
) -> Metrics {
    let device = model.pos.val().device();
    let n = data.len(true).min(limit.unwrap_or(usize::MAX));
    let (mut loss_sum, mut correct, mut count, mut non_finite) = (0.0, 0usize, 0usize, false);
    let (mut finite_sum, mut finite_count) = (0.0, 0usize);
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let mut f = match polys {
            Some(p) => Forward::polynomial(p),
            None => Forward::exact(),
        };
        let (loss, logits, y) = batch_loss(model, make_batch::<B>(data, true, chunk, &device), &mut f);
        let preds = logits.dims()[0];
        let l: f64 = loss.into_scalar().elem();
        if l.is_finite() {
            finite_sum += l * preds as f64;
            finite_count += preds;
        } else {
            non_finite = true;
        }
        loss_sum += l * preds as f64;
        let hits: i64 = logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(y)
            .int()
            .sum()
            .into_scalar()
            .elem();
        correct += hits as usize;
        count += preds;
    }
    let loss = loss_sum / count.max(1) as f64;
    Metrics {
        loss,
        accuracy: correct as f64 / count.max(1) as f64,
        perplexity: loss.exp(),
        count,
        non_finite,
        non_finite_share: (count - finite_count) as f64 / count.max(1) as f64,
        finite_perplexity: (finite_sum / finite_count.max(1) as f64).exp(),
    }
}

/// Records the input range of every site over the first `limit` training items, in inference mode.
pub fn record_ranges<B: Backend>(
    model: &Transformer<B>,
    data: &TaskData,
    batch: usize,
    limit: usize,
) -> RangeRecord {
    let device = model.pos.val().device();
    let n = data.len(false).min(limit);
    let mut rec = RangeRecord::default();
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(batch.max(1)) {
        let mut f = Forward::exact().recording();
        let _ = batch_loss(model, make_batch::<B>(data, false, chunk, &device), &mut f);
        for t in f.taps {
            let (lo, hi): (f64, f64) = (t.min.into_scalar().elem(), t.max.into_scalar().elem());
            rec.observe(&t.site, t.kind, lo, hi);
        }
    }
    rec
}

/// What the polynomial sites of a model saw on held-out items (see [`audit_sites`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteAudit {
    /// Site name.
    pub site: String,
    /// What it computes.
    pub kind: SiteKind,
    /// The interval its polynomial was fitted on.
    pub interval: Range,
    /// Smallest and largest finite input seen.
    pub seen: Range,
    /// Items on which the site's input left the interval (or was not finite).
    pub items_outside: usize,
    /// Items on which this was the first site, in forward order, whose input left its interval: where
    /// the trouble starts (a polynomial far outside its interval grows like `x^degree` and the sites
    /// after it inherit the blow-up).
    pub items_first_outside: usize,
}

/// Runs the polynomial model item by item on the first `limit` held-out items and reports, for every
/// fitted site in forward order, the inputs it saw against its interval.
pub fn audit_sites<B: Backend>(
    model: &Transformer<B>,
    polys: &PolySet,
    data: &TaskData,
    limit: usize,
) -> Vec<SiteAudit> {
    let device = model.pos.val().device();
    let mut out: Vec<SiteAudit> = Vec::new();
    for i in 0..data.len(true).min(limit) {
        let mut f = Forward::polynomial(polys).recording();
        let _ = batch_loss(model, make_batch::<B>(data, true, &[i], &device), &mut f);
        let mut first = true;
        for t in f.taps {
            let Some(fitted) = polys.sites.get(&t.site) else {
                continue;
            };
            let (lo, hi): (f64, f64) = (t.min.into_scalar().elem(), t.max.into_scalar().elem());
            let entry = match out.iter().position(|a| a.site == t.site) {
                Some(k) => &mut out[k],
                None => {
                    out.push(SiteAudit {
                        site: t.site.clone(),
                        kind: t.kind,
                        interval: fitted.interval,
                        seen: Range::empty(),
                        items_outside: 0,
                        items_first_outside: 0,
                    });
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            if lo.is_finite() && hi.is_finite() {
                entry.seen.observe(lo, hi);
            }
            let outside = !(lo >= fitted.interval.min && hi <= fitted.interval.max);
            if outside {
                entry.items_outside += 1;
                if first {
                    entry.items_first_outside += 1;
                    first = false;
                }
            }
        }
    }
    out
}

/// Global-norm gradient clipping (burn's built-in clipping is per tensor).
struct SqNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    acc: Option<Tensor<B::InnerBackend, 1>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SqNorm<'_, B> {
    fn visit_float<const K: usize>(&mut self, p: &Param<Tensor<B, K>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, K>(p.id) {
            let s = g.square().sum();
            self.acc = Some(match self.acc.take() {
                Some(a) => a + s,
                None => s,
            });
        }
    }
}

struct ScaleGrads<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    coef: Tensor<B::InnerBackend, 1>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for ScaleGrads<'_, B> {
    fn visit_float<const K: usize>(&mut self, p: &Param<Tensor<B, K>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, K>(p.id) {
            let c: Tensor<B::InnerBackend, K> = self.coef.clone().reshape([1; K]);
            self.grads.register::<B::InnerBackend, K>(p.id, g * c);
        }
    }
}

/// Scales all gradients so their global L2 norm is at most `max`; returns the norm before clipping.
fn clip_global<B: AutodiffBackend>(m: &Transformer<B>, grads: &mut GradientsParams, max: f64) -> f64 {
    let mut v = SqNorm::<B> { grads, acc: None };
    m.visit(&mut v);
    let Some(sq) = v.acc else { return 0.0 };
    let norm = sq.sqrt();
    let value: f64 = norm.clone().into_scalar().elem();
    let coef = norm.add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
    let mut s = ScaleGrads::<B> { grads, coef };
    m.visit(&mut s);
    value
}

/// What happened during training, one row per log interval and per epoch.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// `(step, train loss averaged over the interval, learning rate, max |activation input|)`.
    pub steps: Vec<(usize, f64, f64, f64)>,
    /// `(epoch, held-out metrics)`.
    pub epochs: Vec<(usize, Metrics)>,
    /// Whether training hit a non-finite loss (it stops there).
    pub diverged: bool,
    /// Wall-clock seconds of training (this run, resumed parts excluded).
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_second: f64,
}

impl History {
    /// Largest |activation input| over the logged intervals.
    pub fn max_act(&self) -> f64 {
        self.steps.iter().map(|s| s.3).fold(0.0, f64::max)
    }
}

/// Resumable training state written next to the checkpoint after every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    history: History,
}

/// Trains `model` (from scratch or from a checkpoint), optionally with polynomials in place (stage 4)
/// and with the range loss (stage 2). After every epoch the model, optimiser state and history go to
/// `dir/train/`; a later call with the same `dir` resumes from the last finished epoch.
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    mut model: Transformer<B>,
    data: &TaskData,
    cfg: &TrainConfig,
    polys: Option<&PolySet>,
    dir: Option<&Path>,
    eval_limit: Option<usize>,
    label: &str,
) -> Result<(Transformer<B>, History), CheckpointError> {
    let device = model.pos.val().device();
    let mut optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, Transformer<B>>();
    let n = data.len(false);
    let steps_per_epoch = n.div_ceil(cfg.batch.max(1));
    let total = steps_per_epoch * cfg.epochs;
    let mut progress = Progress {
        epochs_done: 0,
        history: History::default(),
    };
    let state_dir = dir.map(|d| d.join("train"));
    if let Some(sd) = &state_dir {
        if sd.join("progress.json").exists() {
            let p: Progress = serde_json::from_slice(&std::fs::read(sd.join("progress.json"))?)?;
            model = Checkpoint::load_weights(model, &sd.join("model.safetensors"))?;
            let rec = BinFileRecorder::<FullPrecisionSettings>::new()
                .load(sd.join("optim"), &device)
                .map_err(|e| CheckpointError::Format(format!("optimizer state: {e}")))?;
            optim = optim.load_record(rec);
            eprintln!("[{label}] resuming after epoch {}", p.epochs_done);
            progress = p;
        }
    }
    let tty = std::io::stderr().is_terminal();
    let first_epoch = progress.epochs_done;
    let t0 = Instant::now();
    let mut samples = 0usize;
    let loss_fn_range = cfg.range.map(|r| RangeTarget {
        act_bound: r.act_bound,
        var_bound: r.var_bound,
    });
    for epoch in progress.epochs_done..cfg.epochs {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_mul(1000).wrapping_add(epoch as u64),
        ));
        let (mut acc_loss, mut acc_n, mut acc_max) = (0.0, 0usize, 0.0f64);
        for (s, chunk) in order.chunks(cfg.batch.max(1)).enumerate() {
            let step = epoch * steps_per_epoch + s;
            let lr = cfg.lr_at(step, total);
            let mut f = match polys {
                Some(p) => Forward::polynomial(p),
                None => Forward::exact(),
            };
            if let Some(t) = loss_fn_range {
                f = f.with_range(t);
            } else if cfg.log_every > 0 && (s + 1) % cfg.log_every == 0 {
                f = f.recording();
            }
            let (task, _, _) = batch_loss(&model, make_batch::<B>(data, false, chunk, &device), &mut f);
            let mut loss = task.clone();
            if let Some(r) = cfg.range {
                let (act, var) = f.penalties();
                if let Some(a) = act {
                    loss = loss + a.mul_scalar(r.alpha);
                }
                if let Some(v) = var {
                    loss = loss + v.mul_scalar(r.beta);
                }
            }
            for t in &f.taps {
                if let super::sites::SiteKind::Act(_) = t.kind {
                    let lo: f64 = t.min.clone().into_scalar().elem();
                    let hi: f64 = t.max.clone().into_scalar().elem();
                    acc_max = acc_max.max(lo.abs()).max(hi.abs());
                }
            }
            let lv: f64 = task.into_scalar().elem();
            if !lv.is_finite() {
                eprintln!("[{label}] non-finite loss at step {step}: stopping (diverged)");
                progress.history.diverged = true;
                progress.history.steps.push((step, lv, lr, acc_max));
                return Ok((model, progress.history));
            }
            acc_loss += lv;
            acc_n += 1;
            samples += chunk.len();
            let grads = loss.backward();
            let mut gp = GradientsParams::from_grads(grads, &model);
            clip_global(&model, &mut gp, cfg.clip);
            model = optim.step(lr, model, gp);
            if cfg.log_every > 0 && (s + 1) % cfg.log_every == 0 {
                let el = t0.elapsed().as_secs_f64();
                let done = step + 1 - first_epoch * steps_per_epoch;
                let left = total - step - 1;
                let eta = el / done.max(1) as f64 * left as f64;
                let mean = acc_loss / acc_n.max(1) as f64;
                if tty {
                    let w = 30;
                    let filled = w * (step + 1) / total.max(1);
                    eprint!("\r[{}{}] ", "#".repeat(filled), ".".repeat(w - filled));
                }
                eprintln!(
                    "[{label}] epoch {}/{} step {}/{} loss {mean:.4} lr {lr:.2e} max|act in| {acc_max:.1} \
                     {:.0} samples/s eta {eta:.0}s",
                    epoch + 1,
                    cfg.epochs,
                    step + 1,
                    total,
                    samples as f64 / el.max(1e-9),
                );
                progress.history.steps.push((step + 1, mean, lr, acc_max));
                acc_loss = 0.0;
                acc_n = 0;
                acc_max = 0.0;
            }
        }
        let m = evaluate(&model.valid(), data, polys, 256, eval_limit);
        eprintln!(
            "[{label}] epoch {}/{} held-out loss {:.4} accuracy {:.2}% perplexity {:.2} ({:.0}s)",
            epoch + 1,
            cfg.epochs,
            m.loss,
            100.0 * m.accuracy,
            m.perplexity,
            t0.elapsed().as_secs_f64()
        );
        progress.history.epochs.push((epoch + 1, m));
        progress.epochs_done = epoch + 1;
        if let Some(sd) = &state_dir {
            std::fs::create_dir_all(sd)?;
            Checkpoint::save_weights(&model, &sd.join("model.safetensors"))?;
            BinFileRecorder::<FullPrecisionSettings>::new()
                .record(optim.to_record(), sd.join("optim"))
                .map_err(|e| CheckpointError::Format(format!("optimizer state: {e}")))?;
            std::fs::write(sd.join("progress.json"), serde_json::to_vec_pretty(&progress)?)?;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    progress.history.seconds += secs;
    progress.history.samples_per_second = samples as f64 / secs.max(1e-9);
    Ok((model, progress.history))
}
