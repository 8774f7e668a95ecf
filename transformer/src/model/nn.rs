//! The transformer in burn: one module type for the ViT and the causal LM, built from a
//! [`ModelConfig`]. Parameter names (the burn module paths, also the safetensors names) are listed in
//! [`crate::model`]'s documentation.

use burn::module::{Module, Param};
use burn::nn::{BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

use super::config::{Activation, AttentionKind, ModelConfig, NormKind, ScalePlacement, TaskConfig};
use super::sites::{Chebyshev, PolySet, SiteKind, SitePoly};

/// LayerNorm epsilon (added to the variance before the inverse square root).
pub const LN_EPS: f64 = 1e-5;
/// BatchNorm epsilon (burn's default).
pub const BN_EPS: f64 = 1e-5;

/// Range-minimisation targets: activation inputs should stay in `[-act_bound, act_bound]`, LayerNorm
/// `var + eps` below `var_bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeTarget {
    /// Bound on |activation input|.
    pub act_bound: f64,
    /// Bound on LayerNorm `var + eps`.
    pub var_bound: f64,
}

/// One observation of a site during a forward pass.
#[derive(Debug, Clone)]
pub struct Tap<B: Backend> {
    /// Site name (module path).
    pub site: String,
    /// What the site computes.
    pub kind: SiteKind,
    /// Min of the site's input over the batch (shape `[1]`).
    pub min: Tensor<B, 1>,
    /// Max of the site's input over the batch (shape `[1]`).
    pub max: Tensor<B, 1>,
    /// The range penalty of this site (shape `[1]`) when a [`RangeTarget`] is set, with
    /// `e = relu(v / bound - 1)`, `v = |x|` and `bound = act_bound` for activations, `v = var + eps` and
    /// `bound = var_bound` for LayerNorm: `max(e)^2 + mean(e^2)` over the batch.
    pub penalty: Option<Tensor<B, 1>>,
}

/// What a forward pass does at the non-polynomial sites, and what it records.
#[derive(Debug)]
pub struct Forward<'a, B: Backend> {
    /// Replace the sites that have a polynomial here (None: exact functions everywhere).
    pub polys: Option<&'a PolySet>,
    /// Record min/max taps of every site.
    pub record: bool,
    /// Compute range penalties against this target.
    pub range: Option<RangeTarget>,
    /// The taps of this pass.
    pub taps: Vec<Tap<B>>,
}

impl<'a, B: Backend> Forward<'a, B> {
    /// Exact functions, nothing recorded.
    pub fn exact() -> Self {
        Forward {
            polys: None,
            record: false,
            range: None,
            taps: Vec::new(),
        }
    }

    /// Polynomials where fitted.
    pub fn polynomial(polys: &'a PolySet) -> Self {
        Forward {
            polys: Some(polys),
            ..Self::exact()
        }
    }

    /// Records min/max at every site.
    pub fn recording(mut self) -> Self {
        self.record = true;
        self
    }

    /// Adds range penalties (implies recording).
    pub fn with_range(mut self, target: RangeTarget) -> Self {
        self.range = Some(target);
        self.record = true;
        self
    }

    /// The summed range penalty of activation sites and of LayerNorm variances.
    pub fn penalties(&self) -> (Option<Tensor<B, 1>>, Option<Tensor<B, 1>>) {
        let (mut act, mut var): (Option<Tensor<B, 1>>, Option<Tensor<B, 1>>) = (None, None);
        for t in &self.taps {
            let Some(p) = &t.penalty else { continue };
            let slot = match t.kind {
                SiteKind::Act(_) => &mut act,
                SiteKind::InvSqrt => &mut var,
                SiteKind::Reciprocal => continue,
            };
            *slot = Some(match slot.take() {
                Some(s) => s + p.clone(),
                None => p.clone(),
            });
        }
        (act, var)
    }

    /// Applies a site: records it, then the polynomial if one is fitted for it, else the exact function.
    fn site<const D: usize>(&mut self, site: String, kind: SiteKind, x: Tensor<B, D>) -> Tensor<B, D> {
        if self.record {
            let flat: Tensor<B, 1> = x.clone().flatten(0, D - 1);
            // Hinge on the batch extreme (pushes the outliers that set the polynomial's interval) plus
            // the mean squared excess of all inputs (pushes the bulk).
            let hinge = |v: Tensor<B, 1>, bound: f64| {
                let scaled = v.div_scalar(bound).sub_scalar(1.0);
                relu(scaled.clone().max()).square() + relu(scaled).square().mean()
            };
            let penalty = self.range.and_then(|t| match kind {
                SiteKind::Act(_) => Some(hinge(flat.clone().abs(), t.act_bound)),
                SiteKind::InvSqrt => Some(hinge(flat.clone(), t.var_bound)),
                SiteKind::Reciprocal => None,
            });
            self.taps.push(Tap {
                site: site.clone(),
                kind,
                min: flat.clone().min().detach(),
                max: flat.max().detach(),
                penalty,
            });
        }
        match self.polys.and_then(|p| p.get(&site)) {
            Some(poly) => apply_poly(poly, x),
            None => match kind {
                SiteKind::Act(Activation::Gelu) => gelu(x),
                SiteKind::Act(Activation::Relu) => relu(x),
                // Division, not recip(): burn-ndarray's recip is a 12-bit SIMD estimate.
                SiteKind::InvSqrt => {
                    let r = x.sqrt();
                    r.ones_like().div(r)
                }
                SiteKind::Reciprocal => x.ones_like().div(x),
            },
        }
    }
}

/// Clenshaw on a tensor (no clamping, like the ciphertext evaluation).
fn apply_cheb<B: Backend, const D: usize>(c: &Chebyshev, x: Tensor<B, D>) -> Tensor<B, D> {
    let (alpha, beta) = c.unit_map();
    let u = x.mul_scalar(alpha).add_scalar(beta);
    let n = c.coeffs.len();
    if n <= 1 {
        return u
            .zeros_like()
            .add_scalar(c.coeffs.first().copied().unwrap_or(0.0));
    }
    let u2 = u.clone().mul_scalar(2.0);
    let mut b1 = u.zeros_like().add_scalar(c.coeffs[n - 1]);
    let mut b2 = u.zeros_like();
    for &ck in c.coeffs[1..n - 1].iter().rev() {
        let b0 = u2.clone().mul(b1.clone()).sub(b2).add_scalar(ck);
        b2 = b1;
        b1 = b0;
    }
    u.mul(b1).sub(b2).add_scalar(c.coeffs[0])
}

/// Evaluates a site polynomial on a tensor.
pub fn apply_poly<B: Backend, const D: usize>(poly: &SitePoly, x: Tensor<B, D>) -> Tensor<B, D> {
    match poly {
        SitePoly::Chebyshev(c) => apply_cheb(c, x),
        SitePoly::CompositeRelu { scale, stages } => {
            let s = stages
                .iter()
                .fold(x.clone().div_scalar(*scale), |v, st| apply_cheb(st, v));
            x.clone().add(x.mul(s)).mul_scalar(0.5)
        }
        SitePoly::Newton {
            inverse_sqrt,
            initial,
            steps,
        } => {
            let mut y = apply_cheb(initial, x.clone());
            for _ in 0..*steps {
                y = if *inverse_sqrt {
                    // y (3 - x y^2) / 2
                    y.clone()
                        .mul(x.clone().mul(y.clone().square()).neg().add_scalar(3.0))
                        .mul_scalar(0.5)
                } else {
                    y.clone().mul(x.clone().mul(y).neg().add_scalar(2.0))
                };
            }
            y
        }
    }
}

/// LayerNorm over the last dimension with a visible inverse square root site.
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// Scale.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift.
    pub beta: Param<Tensor<B, 1>>,
}

impl<B: Backend> LayerNorm<B> {
    fn new(d: usize, device: &B::Device) -> Self {
        LayerNorm {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Param::from_tensor(Tensor::zeros([d], device)),
        }
    }

    fn forward(&self, x: Tensor<B, 3>, site: &str, f: &mut Forward<B>) -> Tensor<B, 3> {
        let mean = x.clone().mean_dim(2);
        let centred = x.sub(mean);
        let var = centred.clone().square().mean_dim(2).add_scalar(LN_EPS);
        let inv = f.site(format!("{site}.var"), SiteKind::InvSqrt, var);
        centred
            .mul(inv)
            .mul(self.gamma.val().unsqueeze::<3>())
            .add(self.beta.val().unsqueeze::<3>())
    }
}

/// A normalisation: exactly one of the two is present.
#[derive(Module, Debug)]
pub struct Norm<B: Backend> {
    /// LayerNorm (language models, and the original ViT).
    pub ln: Option<LayerNorm<B>>,
    /// BatchNorm over channels (HE-friendly ViT).
    pub bn: Option<BatchNorm<B>>,
}

impl<B: Backend> Norm<B> {
    fn new(kind: NormKind, d: usize, device: &B::Device) -> Self {
        match kind {
            NormKind::LayerNorm => Norm {
                ln: Some(LayerNorm::new(d, device)),
                bn: None,
            },
            NormKind::BatchNorm { .. } => Norm {
                ln: None,
                bn: Some(BatchNormConfig::new(d).with_epsilon(BN_EPS).init(device)),
            },
        }
    }

    fn forward(&self, x: Tensor<B, 3>, site: &str, f: &mut Forward<B>) -> Tensor<B, 3> {
        match (&self.ln, &self.bn) {
            (Some(ln), _) => ln.forward(x, site, f),
            (None, Some(bn)) => token_bn(bn, x),
            (None, None) => x,
        }
    }
}

/// BatchNorm over the channels (last dim) of a `[batch, tokens, channels]` tensor.
fn token_bn<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    bn.forward(x.swap_dims(1, 2)).swap_dims(1, 2)
}

/// Multi-head attention with the configured weights.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Fused Q, K, V projection: `[dim, 3 dim]`, output columns `[q | k | v]`, heads contiguous in each.
    pub qkv: Linear<B>,
    /// BatchNorm across the heads' concatenated outputs (BatchNorm ViT with extras).
    pub head_bn: Option<BatchNorm<B>>,
    /// Output projection.
    pub proj: Linear<B>,
}

impl<B: Backend> Attention<B> {
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cfg: &ModelConfig,
        site: &str,
        mask: Option<&Tensor<B, 2>>,
        f: &mut Forward<B>,
    ) -> Tensor<B, 3> {
        let [b, l, d] = x.dims();
        let (h, dh) = (cfg.heads, cfg.head_dim());
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, l, 3, h, dh])
            .permute([2, 0, 3, 1, 4]);
        let q: Tensor<B, 4> = qkv.clone().narrow(0, 0, 1).squeeze_dim(0);
        let k: Tensor<B, 4> = qkv.clone().narrow(0, 1, 1).squeeze_dim(0);
        let v: Tensor<B, 4> = qkv.narrow(0, 2, 1).squeeze_dim(0);
        let s = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()); // [b, h, l, l]
        let mask4 = mask.map(|m| m.clone().unsqueeze::<4>());
        let a = match cfg.attention {
            AttentionKind::Softmax => {
                let s = match &mask4 {
                    // Additive -inf (a large negative) above the diagonal.
                    Some(m) => s.add(m.clone().neg().add_scalar(1.0).mul_scalar(-1e9)),
                    None => s,
                };
                softmax(s, 3)
            }
            AttentionKind::Pointwise {
                act,
                scaling,
                placement,
            } => {
                // S(L) with L the model's sequence length (a public constant), also for shorter inputs.
                let c = scaling.factor(cfg.tokens());
                let s = match placement {
                    ScalePlacement::Before | ScalePlacement::Both => s.div_scalar(c),
                    ScalePlacement::After => s,
                };
                let a = f.site(format!("{site}.sigma"), SiteKind::Act(act), s);
                let a = match placement {
                    ScalePlacement::After | ScalePlacement::Both => a.div_scalar(c),
                    ScalePlacement::Before => a,
                };
                match &mask4 {
                    Some(m) => a.mul(m.clone()),
                    None => a,
                }
            }
            AttentionKind::PowerSoftmax { p, eps } => {
                if B::ad_enabled(&s.device()) {
                    // Training: divide each row by its max |s| (detached) so x^p cannot overflow.
                    let m = s.clone().abs().max_dim(3).detach().add_scalar(1e-6);
                    let xp = s.div(m).powi_scalar(p as i32);
                    let xp = match &mask4 {
                        Some(mk) => xp.mul(mk.clone()),
                        None => xp,
                    };
                    let den = xp.clone().sum_dim(3).add_scalar(eps);
                    xp.div(den)
                } else {
                    // Inference: x^p / (L (eps / L + mean_j x^p)), the reciprocal a site.
                    let xp = s.powi_scalar(p as i32);
                    let xp = match &mask4 {
                        Some(mk) => xp.mul(mk.clone()),
                        None => xp,
                    };
                    let n = cfg.tokens() as f64;
                    let den = xp.clone().sum_dim(3).div_scalar(n).add_scalar(eps / n);
                    let inv = f.site(format!("{site}.den"), SiteKind::Reciprocal, den);
                    xp.mul(inv).div_scalar(n)
                }
            }
        };
        let o = a.matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        let o = match &self.head_bn {
            Some(bn) => token_bn(bn, o),
            None => o,
        };
        self.proj.forward(o)
    }
}

/// The MLP: `fc2(act([bn](fc1(x))))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// First linear layer.
    pub fc1: Linear<B>,
    /// BatchNorm after `fc1` (BatchNorm ViT with extras).
    pub bn: Option<BatchNorm<B>>,
    /// Second linear layer.
    pub fc2: Linear<B>,
}

/// One pre-norm block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// Norm before attention.
    pub norm1: Norm<B>,
    /// Attention.
    pub attn: Attention<B>,
    /// Norm before the MLP.
    pub norm2: Norm<B>,
    /// MLP.
    pub mlp: Mlp<B>,
}

/// The whole model.
#[derive(Module, Debug)]
pub struct Transformer<B: Backend> {
    /// Patch embedding (vision): `[channels * patch^2, dim]`, patch pixels channel-major then row-major.
    pub patch: Option<Linear<B>>,
    /// Token embedding (language): `[vocab, dim]`.
    pub tok: Option<Embedding<B>>,
    /// Class token `[1, 1, dim]` (vision with `class_token`).
    pub cls: Option<Param<Tensor<B, 3>>>,
    /// Learned positions `[1, tokens, dim]`.
    pub pos: Param<Tensor<B, 3>>,
    /// The blocks.
    pub blocks: Vec<Block<B>>,
    /// Final norm.
    pub norm: Norm<B>,
    /// Classifier / next-token head `[dim, classes or vocab]`.
    pub head: Linear<B>,
    /// The configuration (not a parameter).
    #[module(skip)]
    pub config: ModelConfig,
}

impl<B: Backend> Transformer<B> {
    /// A freshly initialised model (burn's default initialisers; positions N(0, 0.02)).
    pub fn new(cfg: &ModelConfig, device: &B::Device) -> Self {
        let d = cfg.dim;
        let extra = matches!(cfg.norm, NormKind::BatchNorm { extra: true });
        let bn = |c: usize| BatchNormConfig::new(c).with_epsilon(BN_EPS).init(device);
        let blocks = (0..cfg.depth)
            .map(|_| Block {
                norm1: Norm::new(cfg.norm, d, device),
                attn: Attention {
                    qkv: LinearConfig::new(d, 3 * d).init(device),
                    head_bn: extra.then(|| bn(d)),
                    proj: LinearConfig::new(d, d).init(device),
                },
                norm2: Norm::new(cfg.norm, d, device),
                mlp: Mlp {
                    fc1: LinearConfig::new(d, cfg.mlp_hidden).init(device),
                    bn: extra.then(|| bn(cfg.mlp_hidden)),
                    fc2: LinearConfig::new(cfg.mlp_hidden, d).init(device),
                },
            })
            .collect();
        let (patch, tok, cls, outputs) = match cfg.task {
            TaskConfig::Vision {
                channels,
                patch,
                num_classes,
                class_token,
                ..
            } => (
                Some(LinearConfig::new(channels * patch * patch, d).init(device)),
                None,
                class_token.then(|| {
                    Param::from_tensor(Tensor::random([1, 1, d], Distribution::Normal(0.0, 0.02), device))
                }),
                num_classes,
            ),
            TaskConfig::Language { vocab, .. } => (
                None,
                Some(EmbeddingConfig::new(vocab, d).init(device)),
                None,
                vocab,
            ),
        };
        Transformer {
            patch,
            tok,
            cls,
            pos: Param::from_tensor(Tensor::random(
                [1, cfg.tokens(), d],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            blocks,
            norm: Norm::new(cfg.norm, d, device),
            head: LinearConfig::new(d, outputs).init(device),
            config: *cfg,
        }
    }

    /// The configuration.
    pub fn cfg(&self) -> &ModelConfig {
        &self.config
    }

    /// Cuts `[b, c, s, s]` images into `[b, patches, c * p * p]`.
    pub fn patchify(&self, images: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, c, s, _] = images.dims();
        let p = match self.cfg().task {
            TaskConfig::Vision { patch, .. } => patch,
            TaskConfig::Language { .. } => 1,
        };
        let g = s / p;
        images
            .reshape([b, c, g, p, g, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, g * g, c * p * p])
    }

    fn blocks_forward(
        &self,
        mut x: Tensor<B, 3>,
        mask: Option<&Tensor<B, 2>>,
        f: &mut Forward<B>,
    ) -> Tensor<B, 3> {
        let cfg = *self.cfg();
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = blk.norm1.forward(x.clone(), &format!("blocks.{i}.norm1"), f);
            x = x + blk.attn.forward(h, &cfg, &format!("blocks.{i}.attn"), mask, f);
            let h = blk.norm2.forward(x.clone(), &format!("blocks.{i}.norm2"), f);
            let h = blk.mlp.fc1.forward(h);
            let h = match &blk.mlp.bn {
                Some(bn) => token_bn(bn, h),
                None => h,
            };
            let h = f.site(format!("blocks.{i}.mlp.act"), SiteKind::Act(cfg.mlp_act), h);
            x = x + blk.mlp.fc2.forward(h);
        }
        self.norm.forward(x, "norm", f)
    }

    /// Vision forward: `[b, c, s, s]` images to `[b, classes]` logits.
    pub fn forward_images(&self, images: Tensor<B, 4>, f: &mut Forward<B>) -> Tensor<B, 2> {
        let x = self.patchify(images);
        let [b, _, _] = x.dims();
        let Some(patch) = &self.patch else {
            return Tensor::zeros([b, self.head.weight.dims()[1]], &x.device());
        };
        let mut x = patch.forward(x);
        if let Some(cls) = &self.cls {
            let d = self.cfg().dim;
            x = Tensor::cat(vec![cls.val().expand([b, 1, d]), x], 1);
        }
        let x = self.blocks_forward(x + self.pos.val(), None, f);
        let pooled = if self.cls.is_some() {
            x.narrow(1, 0, 1).squeeze_dim(1)
        } else {
            x.mean_dim(1).squeeze_dim(1)
        };
        self.head.forward(pooled)
    }

    /// Language forward: `[b, l]` token ids to `[b, l, vocab]` next-token logits (causal).
    pub fn forward_tokens(&self, ids: Tensor<B, 2, Int>, f: &mut Forward<B>) -> Tensor<B, 3> {
        let [b, l] = ids.dims();
        let device = ids.device();
        let Some(tok) = &self.tok else {
            return Tensor::zeros([b, l, self.head.weight.dims()[1]], &device);
        };
        let x = tok.forward(ids) + self.pos.val().narrow(1, 0, l);
        let mask = causal_mask::<B>(l, &device);
        let x = self.blocks_forward(x, Some(&mask), f);
        self.head.forward(x)
    }
}

/// The multiplicative causal mask: 1 on and below the diagonal (key j <= query i), 0 above.
pub fn causal_mask<B: Backend>(l: usize, device: &B::Device) -> Tensor<B, 2> {
    let data: Vec<f32> = (0..l * l)
        .map(|k| if k % l <= k / l { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(data, [l, l]), device)
}
