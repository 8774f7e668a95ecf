//! CPU-scale HE-friendly ViT training-step benchmark, burn 0.21.0.
//! 28x28x1 input, patch 4 -> 49 tokens, dim 64, 2 blocks, 4 heads, MLP 128, 10 classes.
//! Attention: relu(QK^T/sqrt(dh)) / sqrt(L) @ V. Norm: BatchNorm1d over channels.
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn_store::{ModuleSnapshot, SafetensorsStore};
use std::time::Instant;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc; // GlobalAlloc


const B_SZ: usize = 64;
const L: usize = 49;
const D: usize = 64;
const H: usize = 4;
const DH: usize = D / H;
const HID: usize = 128;
const NC: usize = 10;
const P: usize = 4;

/// BatchNorm1d over the embedding channels of a [B, L, D] token tensor.
#[derive(Module, Debug)]
struct TokenBN<B: Backend> {
    bn: BatchNorm<B>,
}
impl<B: Backend> TokenBN<B> {
    fn new(c: usize, dev: &B::Device) -> Self {
        Self { bn: BatchNormConfig::new(c).init(dev) }
    }
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.bn.forward(x.swap_dims(1, 2)).swap_dims(1, 2)
    }
}

#[derive(Module, Debug)]
struct Attn<B: Backend> {
    qkv: Linear<B>,
    proj: Linear<B>,
}
impl<B: Backend> Attn<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, l, _] = x.dims();
        let qkv = self.qkv.forward(x).reshape([b, l, 3, H, DH]).permute([2, 0, 3, 1, 4]); // [3,B,H,L,dh]
        let q: Tensor<B, 4> = qkv.clone().narrow(0, 0, 1).squeeze_dim(0);
        let k: Tensor<B, 4> = qkv.clone().narrow(0, 1, 1).squeeze_dim(0);
        let v: Tensor<B, 4> = qkv.narrow(0, 2, 1).squeeze_dim(0);
        let s = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (DH as f64).sqrt());
        let a = relu(s).mul_scalar(1.0 / (l as f64).sqrt());
        let o = a.matmul(v).swap_dims(1, 2).reshape([b, l, D]);
        self.proj.forward(o)
    }
}

#[derive(Module, Debug)]
struct Block<B: Backend> {
    n1: TokenBN<B>,
    attn: Attn<B>,
    n2: TokenBN<B>,
    fc1: Linear<B>,
    nmlp: TokenBN<B>,
    fc2: Linear<B>,
}
impl<B: Backend> Block<B> {
    fn new(dev: &B::Device) -> Self {
        Self {
            n1: TokenBN::new(D, dev),
            attn: Attn { qkv: LinearConfig::new(D, 3 * D).init(dev), proj: LinearConfig::new(D, D).init(dev) },
            n2: TokenBN::new(D, dev),
            fc1: LinearConfig::new(D, HID).init(dev),
            nmlp: TokenBN::new(HID, dev),
            fc2: LinearConfig::new(HID, D).init(dev),
        }
    }
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = x.clone() + self.attn.forward(self.n1.forward(x));
        let h = gelu(self.nmlp.forward(self.fc1.forward(self.n2.forward(x.clone()))));
        x + self.fc2.forward(h)
    }
}

#[derive(Module, Debug)]
struct Vit<B: Backend> {
    patch: Linear<B>,
    pos: Param<Tensor<B, 3>>,
    blocks: Vec<Block<B>>,
    norm: TokenBN<B>,
    head: Linear<B>,
}
impl<B: Backend> Vit<B> {
    fn new(dev: &B::Device) -> Self {
        Self {
            patch: LinearConfig::new(P * P, D).init(dev),
            pos: Param::from_tensor(Tensor::random([1, L, D], Distribution::Normal(0.0, 0.02), dev)),
            blocks: (0..2).map(|_| Block::new(dev)).collect(),
            norm: TokenBN::new(D, dev),
            head: LinearConfig::new(D, NC).init(dev),
        }
    }
    /// x: [B, 1, 28, 28]
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let b = x.dims()[0];
        let g = 28 / P;
        let x = x.reshape([b, g, P, g, P]).permute([0, 1, 3, 2, 4]).reshape([b, g * g, P * P]);
        let mut x = self.patch.forward(x) + self.pos.val();
        for blk in &self.blocks {
            x = blk.forward(x);
        }
        let x = self.norm.forward(x).mean_dim(1).squeeze_dim(1); // mean pool -> [B, D]
        self.head.forward(x)
    }
}

/// Global-norm gradient clipping (burn's built-in GradientClipping::Norm is per tensor).
struct SqNorm<'a, B: AutodiffBackend> {
    grads: &'a GradientsParams,
    acc: Option<Tensor<B::InnerBackend, 1>>,
}
impl<B: AutodiffBackend> ModuleVisitor<B> for SqNorm<'_, B> {
    fn visit_float<const K: usize>(&mut self, p: &Param<Tensor<B, K>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, K>(p.id) {
            let s = g.square().sum();
            self.acc = Some(match self.acc.take() { Some(a) => a + s, None => s });
        }
    }
}
struct Scale<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    coef: Tensor<B::InnerBackend, 1>,
}
impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
    fn visit_float<const K: usize>(&mut self, p: &Param<Tensor<B, K>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, K>(p.id) {
            let c: Tensor<B::InnerBackend, K> = self.coef.clone().reshape([1; K]);
            self.grads.register::<B::InnerBackend, K>(p.id, g * c);
        }
    }
}
fn clip_global<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(m: &M, grads: &mut GradientsParams, max: f64) {
    let mut v = SqNorm::<B> { grads, acc: None };
    m.visit(&mut v);
    let norm = v.acc.unwrap().sqrt();
    let coef = norm.add_scalar(1e-6).recip().mul_scalar(max).clamp_max(1.0);
    let mut s = Scale::<B> { grads, coef };
    m.visit(&mut s);
}

fn run<B: AutodiffBackend>(dev: B::Device, name: &str) {
    B::seed(&dev, 0);
    let mut model = Vit::<B>::new(&dev);
    let mut optim = AdamWConfig::new().with_weight_decay(0.05).init::<B, Vit<B>>();
    let loss_fn = CrossEntropyLossConfig::new().init(&dev);
    let x = Tensor::<B, 4>::random([B_SZ, 1, 28, 28], Distribution::Normal(0.0, 1.0), &dev);
    let labels: Vec<i64> = (0..B_SZ as i64).map(|i| (i * 7) % NC as i64).collect();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [B_SZ]), &dev);
    let warm = 5;
    let n: usize = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let mut times = Vec::new();
    let mut last = 0.0;
    let mut phases = [0f64; 4];
    for i in 0..warm + n {
        let t = Instant::now();
        let logits = model.forward(x.clone());
        let loss = loss_fn.forward(logits, y.clone());
        let t1 = t.elapsed().as_secs_f64();
        let grads = loss.backward();
        let t2 = t.elapsed().as_secs_f64();
        let mut gp = GradientsParams::from_grads(grads, &model);
        clip_global::<B, _>(&model, &mut gp, 1.0);
        let t3 = t.elapsed().as_secs_f64();
        model = optim.step(1e-3, model, gp);
        last = loss.into_scalar().elem::<f32>();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if i >= warm {
            times.push(ms);
            phases[0] += t1; phases[1] += t2 - t1; phases[2] += t3 - t2; phases[3] += ms / 1e3 - t3;
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: median {:.2} ms/step (min {:.2}, max {:.2}) over {n} steps; final loss {last:.4}",
        times[n / 2], times[0], times[n - 1]
    );
    let f = |x: f64| x * 1e3 / n as f64;
    println!("  mean phases ms: forward+loss {:.1}, backward {:.1}, grads+clip {:.1}, optim {:.1}", f(phases[0]), f(phases[1]), f(phases[2]), f(phases[3]));
    // eval mode (no autodiff): BatchNorm uses running stats
    let valid = model.valid();
    let xe = Tensor::<B::InnerBackend, 4>::random([8, 1, 28, 28], Distribution::Normal(0.0, 1.0), &dev);
    let out = valid.forward(xe);
    println!("eval logits shape {:?}", out.dims());
    // safetensors round trip
    let path = "/tmp/fwbench/burn/model.safetensors";
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    model.save_into(&mut store).expect("save");
    let mut m2 = Vit::<B>::new(&dev);
    let mut store = SafetensorsStore::from_file(path);
    let r = m2.load_from(&mut store).expect("load");
    println!("safetensors: applied {} tensors, missing {:?}", r.applied.len(), r.missing);
    let rm = m2.blocks[0].n1.bn.running_mean.value().into_data();
    println!("loaded running_mean[0..3] = {:?}", &rm.as_slice::<f32>().unwrap()[..3]);
}

use burn::tensor::ElementConversion;

fn main() {
    #[cfg(not(feature = "flex"))]
    run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default(), "burn-ndarray");
    #[cfg(feature = "flex")]
    run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default(), "burn-flex");
}
