//! CPU-scale HE-friendly ViT training-step benchmark, candle 0.11.1.
//! 28x28x1 input, patch 4 -> 49 tokens, dim 64, 2 blocks, 4 heads, MLP 128, 10 classes.
//! Attention: relu(QK^T/sqrt(dh)) / sqrt(L) @ V. Norm: BatchNorm1d over channels.
use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, D as Dim};
use candle_nn::{batch_norm, linear, AdamW, BatchNorm, Init, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
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

/// BatchNorm1d over the channels of a [B, L, C] token tensor.
struct TokenBN(BatchNorm);
impl TokenBN {
    fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self(batch_norm(c, candle_nn::BatchNormConfig::default(), vb)?))
    }
}
impl ModuleT for TokenBN {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.0.forward_t(&x.transpose(1, 2)?.contiguous()?, train)?.transpose(1, 2)?.contiguous()
    }
}

struct Attn {
    qkv: Linear,
    proj: Linear,
}
impl Module for Attn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let qkv = self.qkv.forward(x)?.reshape((b, l, 3, H, DH))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let s = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (DH as f64).sqrt()))?;
        let a = (s.relu()? * (1.0 / (l as f64).sqrt()))?;
        let o = a.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((b, l, D))?;
        self.proj.forward(&o)
    }
}

struct Block {
    n1: TokenBN,
    attn: Attn,
    n2: TokenBN,
    fc1: Linear,
    nmlp: TokenBN,
    fc2: Linear,
}
impl Block {
    fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            n1: TokenBN::new(D, vb.pp("n1"))?,
            attn: Attn { qkv: linear(D, 3 * D, vb.pp("qkv"))?, proj: linear(D, D, vb.pp("proj"))? },
            n2: TokenBN::new(D, vb.pp("n2"))?,
            fc1: linear(D, HID, vb.pp("fc1"))?,
            nmlp: TokenBN::new(HID, vb.pp("nmlp"))?,
            fc2: linear(HID, D, vb.pp("fc2"))?,
        })
    }
}
impl ModuleT for Block {
    fn forward_t(&self, x: &Tensor, t: bool) -> Result<Tensor> {
        let x = (x + self.attn.forward(&self.n1.forward_t(x, t)?)?)?;
        let h = self.nmlp.forward_t(&self.fc1.forward(&self.n2.forward_t(&x, t)?)?, t)?.gelu_erf()?;
        &x + self.fc2.forward(&h)?
    }
}

struct Vit {
    patch: Linear,
    pos: Tensor,
    blocks: Vec<Block>,
    norm: TokenBN,
    head: Linear,
}
impl Vit {
    fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            patch: linear(P * P, D, vb.pp("patch"))?,
            pos: vb.get_with_hints((1, L, D), "pos", Init::Randn { mean: 0.0, stdev: 0.02 })?,
            blocks: (0..2).map(|i| Block::new(vb.pp(format!("blocks.{i}")))).collect::<Result<_>>()?,
            norm: TokenBN::new(D, vb.pp("norm"))?,
            head: linear(D, NC, vb.pp("head"))?,
        })
    }
}
impl ModuleT for Vit {
    /// x: [B, 1, 28, 28]
    fn forward_t(&self, x: &Tensor, t: bool) -> Result<Tensor> {
        let b = x.dim(0)?;
        let g = 28 / P;
        let x = x.reshape((b, g, P, g, P))?.permute((0, 1, 3, 2, 4))?.contiguous()?.reshape((b, g * g, P * P))?;
        let mut x = self.patch.forward(&x)?.broadcast_add(&self.pos)?;
        for blk in &self.blocks {
            x = blk.forward_t(&x, t)?;
        }
        let x = self.norm.forward_t(&x, t)?.mean(1)?; // mean pool -> [B, D]
        self.head.forward(&x)
    }
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    // NOTE: Device::Cpu.set_seed(0) errors in candle 0.11.1 ("cannot seed the CPU rng")
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = Vit::new(vb)?;
    let vars = varmap.all_vars();
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: 1e-3, weight_decay: 0.05, ..Default::default() })?;
    let x = Tensor::randn(0f32, 1f32, (B_SZ, 1, 28, 28), &dev)?;
    let labels: Vec<u32> = (0..B_SZ as u32).map(|i| (i * 7) % NC as u32).collect();
    let y = Tensor::from_vec(labels, B_SZ, &dev)?;
    let warm = 5;
    let n: usize = std::env::var("STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let mut times = Vec::new();
    let mut last = 0.0;
    for i in 0..warm + n {
        let t = Instant::now();
        let logits = model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let mut grads = loss.backward()?;
        // global-norm clipping to 1.0 (candle has none built in)
        let mut sq = Tensor::zeros((), DType::F32, &dev)?;
        for v in &vars {
            if let Some(g) = grads.get(v) {
                sq = (sq + g.sqr()?.sum_all()?)?;
            }
        }
        let norm = sq.sqrt()?.to_scalar::<f32>()? as f64;
        let coef = (1.0 / (norm + 1e-6)).min(1.0);
        if coef < 1.0 {
            for v in &vars {
                if let Some(g) = grads.get(v) {
                    let g2 = (g * coef)?;
                    grads.insert(v, g2);
                }
            }
        }
        opt.step(&grads)?;
        last = loss.to_scalar::<f32>()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if i >= warm {
            times.push(ms);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "candle: median {:.2} ms/step (min {:.2}, max {:.2}) over {n} steps; final loss {last:.4}",
        times[n / 2], times[0], times[n - 1]
    );
    let xe = Tensor::randn(0f32, 1f32, (8, 1, 28, 28), &dev)?;
    println!("eval logits shape {:?}", model.forward_t(&xe, false)?.dims());
    let _ = Dim::Minus1;
    let path = "/tmp/fwbench/candle/model.safetensors";
    varmap.save(path)?;
    let mut vm2 = VarMap::new();
    let _m2 = Vit::new(VarBuilder::from_varmap(&vm2, DType::F32, &dev))?;
    vm2.load(path)?;
    let rm = vm2.data().lock().unwrap()["blocks.0.n1.running_mean"].as_tensor().to_vec1::<f32>()?;
    println!("safetensors: {} tensors; loaded running_mean[0..3] = {:?}", vm2.all_vars().len(), &rm[..3]);
    Ok(())
}
