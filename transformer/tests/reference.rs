//! The f64 reference forward against the burn model: exact functions and fitted polynomials, every
//! attention kind, BatchNorm folding, checkpoints, and errors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail loudly"
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::backend::ndarray::NdArrayDevice;
use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use transformer::data::ImageSet;
use transformer::model::checkpoint::{export_f64, Weights, CHECKPOINT_VERSION};
use transformer::model::train::image_batch_data;
use transformer::model::{
    record_ranges, train, Activation, AttentionKind, Checkpoint, CheckpointMeta, Cpu, CpuTrain, DataPrep,
    FitConfig, Forward, LengthScaling, ModelConfig, NormKind, PolySet, ScalePlacement, Stage, TaskConfig,
    TaskData, TrainConfig, Transformer,
};
use transformer::reference::{Dense, ReferenceError, ReferenceModel};

/// Max |diff| / max(1, max |logit|) allowed between burn (f32) and the f64 reference.
const TOL: f64 = 1e-4;
/// The same for burn forwards over a whole batch (once 5e-3: burn-ndarray's `recip` is a 12-bit SIMD
/// estimate on tensors of 32 elements or more; the model now divides instead).
const BATCH_TOL: f64 = 1e-4;

/// Random images (`n_train` + 8 held out) or a random token stream for `cfg`'s task.
fn task_data(cfg: &ModelConfig, n_train: usize) -> TaskData {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    match cfg.task {
        TaskConfig::Vision {
            image_size,
            channels,
            num_classes,
            ..
        } => {
            let set = |n: usize, rng: &mut ChaCha8Rng| {
                let px: Vec<f32> = (0..n * channels * image_size * image_size)
                    .map(|_| rng.random::<f32>())
                    .collect();
                let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..num_classes)).collect();
                ImageSet::new(
                    "random",
                    (channels, image_size, image_size),
                    num_classes,
                    px,
                    labels,
                )
                .unwrap()
            };
            let train = set(n_train, &mut rng);
            let test = set(8, &mut rng);
            TaskData::images(train, test)
        }
        TaskConfig::Language { vocab, seq_len } => {
            let mut stream =
                |n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(0..vocab as u32)).collect() };
            TaskData::Tokens {
                train: stream(n_train * seq_len + 1),
                test: stream(8 * seq_len + 1),
                seq_len,
            }
        }
    }
}

/// A seeded model trained for 5 steps at a high learning rate (so LayerNorm/BatchNorm parameters and
/// BatchNorm running statistics are far from their initial values), in inference mode.
/// burn's ndarray backend draws initial weights (and training randomness) from one process-wide
/// generator: tests running in parallel threads would interleave their draws and get different models
/// from run to run. Every test that creates a model holds this lock from seeding to the end of training.
static MODEL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn model_rng() -> std::sync::MutexGuard<'static, ()> {
    MODEL_RNG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An untrained model, created under [`model_rng`].
fn fresh(cfg: &ModelConfig) -> Transformer<Cpu> {
    let _rng = model_rng();
    Transformer::<Cpu>::new(cfg, &NdArrayDevice::default())
}

fn trained(cfg: &ModelConfig, data: &TaskData) -> Transformer<Cpu> {
    let _rng = model_rng();
    let device = NdArrayDevice::default();
    <CpuTrain as Backend>::seed(&device, 1);
    let model = Transformer::<CpuTrain>::new(cfg, &device);
    let tc = TrainConfig {
        epochs: 1,
        batch: 8,
        lr: 1e-2,
        weight_decay: 0.0,
        warmup: 0.0,
        clip: 1.0,
        seed: 1,
        log_every: 0,
        range: None,
    };
    let (model, history) = train(model, data, &tc, None, None, Some(8), "reference-test").unwrap();
    assert!(!history.diverged, "training diverged");
    model.valid()
}

/// The first `n` normalised training images `[c, s, s]`, as f32 (burn's input) and f64 (the
/// reference's), and the shape of one image.
fn images(data: &TaskData, n: usize) -> (Vec<f32>, Vec<f64>, [usize; 3]) {
    let TaskData::Images { train, mean, std, .. } = data else {
        panic!("not images");
    };
    let idx: Vec<usize> = (0..n).collect();
    let px: Vec<f32> = image_batch_data(train, &idx, *mean, *std).to_vec().unwrap();
    let wide = px.iter().map(|&v| f64::from(v)).collect();
    (px, wide, [train.channels(), train.height(), train.width()])
}

/// Burn's logits of images stored one after another (all in one batch).
fn burn_vision(
    model: &Transformer<Cpu>,
    px: &[f32],
    [c, h, w]: [usize; 3],
    polys: Option<&PolySet>,
) -> Vec<Vec<f64>> {
    let device = NdArrayDevice::default();
    let n = px.len() / (c * h * w);
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(px.to_vec(), [n, c, h, w]), &device);
    let mut f = match polys {
        Some(p) => Forward::polynomial(p),
        None => Forward::exact(),
    };
    let out = model.forward_images(x, &mut f);
    let [_, classes] = out.dims();
    let v: Vec<f32> = out.into_data().convert::<f32>().to_vec().unwrap();
    v.chunks(classes)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect()
}

/// Per-position logits of token windows `[n][l]` (rows: window, then position), all in one batch.
fn burn_tokens(model: &Transformer<Cpu>, windows: &[Vec<u32>], polys: Option<&PolySet>) -> Vec<Vec<f64>> {
    let device = NdArrayDevice::default();
    let (n, l) = (windows.len(), windows[0].len());
    let ids: Vec<i64> = windows.iter().flatten().map(|&t| i64::from(t)).collect();
    let x = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [n, l]), &device);
    let mut f = match polys {
        Some(p) => Forward::polynomial(p),
        None => Forward::exact(),
    };
    let out = model.forward_tokens(x, &mut f);
    let [_, _, v] = out.dims();
    let vals: Vec<f32> = out.into_data().convert::<f32>().to_vec().unwrap();
    vals.chunks(v)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect()
}

/// Checks and returns max |diff| / max(1, max |logit|).
fn compare(what: &str, burn: &[Vec<f64>], reference: &[Vec<f64>], tol: f64) -> f64 {
    assert_eq!(burn.len(), reference.len(), "{what}: row count");
    let (mut diff, mut max): (f64, f64) = (0.0, 0.0);
    for (b, r) in burn.iter().zip(reference) {
        assert_eq!(b.len(), r.len(), "{what}: row width");
        for (x, y) in b.iter().zip(r) {
            assert!(
                x.is_finite() && y.is_finite(),
                "{what}: non-finite logit {x} / {y}"
            );
            diff = diff.max((x - y).abs());
            max = max.max(x.abs());
        }
    }
    let rel = diff / max.max(1.0);
    eprintln!("{what}: max |diff| {diff:.3e}, max |logit| {max:.3}, relative {rel:.3e}");
    assert!(rel <= tol, "{what}: relative difference {rel:.3e} > {tol:.0e}");
    rel
}

/// Records ranges on the training data and fits the polynomials: the default fit, and a coarse one
/// (low degrees, loose Newton target) whose logits differ visibly from the exact functions', so the
/// comparisons show that the sites really use the polynomials.
fn fit(model: &Transformer<Cpu>, data: &TaskData) -> (PolySet, PolySet) {
    let record = record_ranges(model, data, 16, 64);
    assert!(!record.sites.is_empty());
    let coarse = FitConfig {
        gelu_degree: 3,
        relu_eps: 0.25,
        relu_precision: 0.2,
        newton_target: 0.2,
        ..FitConfig::default()
    };
    (
        PolySet::fit(&record, &FitConfig::default()).unwrap(),
        PolySet::fit(&record, &coarse).unwrap(),
    )
}

/// Asserts the coarse polynomials move the reference logits (by many times the tolerance).
fn assert_polys_matter(what: &str, exact: &[Vec<f64>], coarse: &[Vec<f64>]) {
    let diff = exact
        .iter()
        .flatten()
        .zip(coarse.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: coarse polynomials move the reference logits by {diff:.3e}");
    assert!(
        diff > 20.0 * TOL,
        "{what}: coarse polynomials change the logits by only {diff:.3e}"
    );
}

/// Asserts the export holds non-trivial BatchNorm statistics (so folding is really exercised).
fn assert_bn_nontrivial(w: &Weights) {
    let mean = &w["blocks.0.norm1.bn.running_mean"].1;
    let var = &w["blocks.0.norm1.bn.running_var"].1;
    let gamma = &w["blocks.0.norm1.bn.gamma"].1;
    assert!(mean.iter().any(|v| v.abs() > 1e-3), "running_mean {mean:?}");
    assert!(var.iter().any(|v| (v - 1.0).abs() > 1e-3), "running_var {var:?}");
    assert!(gamma.iter().any(|v| (v - 1.0).abs() > 1e-3), "gamma {gamma:?}");
}

/// Trains a vision model, compares exact and polynomial logits (burn one image at a time, then the
/// whole batch at once).
fn check_vision(name: &str, cfg: &ModelConfig) {
    let data = task_data(cfg, 40);
    let model = trained(cfg, &data);
    let weights = export_f64(&model).unwrap();
    if let NormKind::BatchNorm { extra } = cfg.norm {
        assert_bn_nontrivial(&weights);
        assert_eq!(weights.contains_key("blocks.0.mlp.bn.running_var"), extra);
        // Every BatchNorm is folded: only linear maps remain around the sites.
        let reference = ReferenceModel::new(cfg, &weights, None).unwrap();
        assert!(reference.norm.is_none());
        assert!(reference
            .blocks
            .iter()
            .all(|b| b.norm1.is_none() && b.norm2.is_none()));
    }
    let n = 6;
    let (px, wide, shape) = images(&data, n);
    let size = px.len() / n;
    let (polys, coarse) = fit(&model, &data);
    let mut logits = Vec::new();
    for (label, p) in [
        ("exact", None),
        ("polynomial", Some(&polys)),
        ("coarse polynomial", Some(&coarse)),
    ] {
        let reference = ReferenceModel::new(cfg, &weights, p).unwrap();
        let ours = reference.forward_images(&wide).unwrap();
        let one_by_one: Vec<Vec<f64>> = px
            .chunks(size)
            .flat_map(|img| burn_vision(&model, img, shape, p))
            .collect();
        compare(&format!("{name} {label}"), &one_by_one, &ours, TOL);
        let batched = burn_vision(&model, &px, shape, p);
        compare(
            &format!("{name} {label}, burn batched"),
            &batched,
            &ours,
            BATCH_TOL,
        );
        logits.push(ours);
    }
    assert_polys_matter(name, &logits[0], &logits[2]);
}

/// Trains a language model, compares exact and polynomial logits on full and shorter windows (burn
/// one window at a time, then all windows at once).
fn check_language(name: &str, cfg: &ModelConfig) {
    let data = task_data(cfg, 40);
    let model = trained(cfg, &data);
    let weights = export_f64(&model).unwrap();
    if let NormKind::BatchNorm { .. } = cfg.norm {
        assert_bn_nontrivial(&weights);
    }
    let TaskData::Tokens { train, seq_len, .. } = &data else {
        panic!("not tokens");
    };
    let (polys, coarse) = fit(&model, &data);
    for l in [*seq_len, 5] {
        let windows: Vec<Vec<u32>> = (0..4)
            .map(|w| train[w * seq_len..w * seq_len + l].to_vec())
            .collect();
        let mut logits = Vec::new();
        for (label, p) in [
            ("exact", None),
            ("polynomial", Some(&polys)),
            ("coarse polynomial", Some(&coarse)),
        ] {
            let reference = ReferenceModel::new(cfg, &weights, p).unwrap();
            let ours: Vec<Vec<f64>> = windows
                .iter()
                .flat_map(|w| reference.forward_tokens(w).unwrap())
                .collect();
            let one_by_one: Vec<Vec<f64>> = windows
                .iter()
                .flat_map(|w| burn_tokens(&model, std::slice::from_ref(w), p))
                .collect();
            compare(&format!("{name} {label} (length {l})"), &one_by_one, &ours, TOL);
            let batched = burn_tokens(&model, &windows, p);
            compare(
                &format!("{name} {label} (length {l}), burn batched"),
                &batched,
                &ours,
                BATCH_TOL,
            );
            logits.push(ours);
        }
        assert_polys_matter(&format!("{name} (length {l})"), &logits[0], &logits[2]);
    }
}

fn with_class_token(cfg: ModelConfig) -> ModelConfig {
    let TaskConfig::Vision {
        image_size,
        channels,
        patch,
        num_classes,
        ..
    } = cfg.task
    else {
        panic!("not vision");
    };
    ModelConfig {
        task: TaskConfig::Vision {
            image_size,
            channels,
            patch,
            num_classes,
            class_token: true,
        },
        ..cfg
    }
}

#[test]
fn vit_batchnorm_extra_folds_exactly() {
    let cfg = ModelConfig::vit_tiny();
    assert_eq!(cfg.norm, NormKind::BatchNorm { extra: true });
    check_vision("vit_tiny (BatchNorm + extras, GELU/sqrt(L))", &cfg);
}

#[test]
fn vit_batchnorm_plain_relu_class_token() {
    let cfg = ModelConfig {
        norm: NormKind::BatchNorm { extra: false },
        attention: AttentionKind::Pointwise {
            act: Activation::Relu,
            scaling: LengthScaling::Linear,
            placement: ScalePlacement::Both,
        },
        mlp_act: Activation::Relu,
        ..with_class_token(ModelConfig::vit_tiny())
    };
    check_vision("vit_tiny (BatchNorm, ReLU/L both, class token)", &cfg);
}

#[test]
fn vit_original_layernorm_softmax() {
    check_vision("vit_tiny original", &ModelConfig::vit_tiny().original());
    check_vision(
        "vit_tiny original, class token",
        &with_class_token(ModelConfig::vit_tiny()).original(),
    );
}

#[test]
fn lm_pointwise_attention() {
    check_language("lm_tiny (LayerNorm, GELU/sqrt(L))", &ModelConfig::lm_tiny());
}

#[test]
fn lm_pointwise_before_none_batchnorm() {
    let cfg = ModelConfig {
        norm: NormKind::BatchNorm { extra: true },
        attention: AttentionKind::Pointwise {
            act: Activation::Gelu,
            scaling: LengthScaling::None,
            placement: ScalePlacement::Before,
        },
        ..ModelConfig::lm_tiny()
    };
    check_language("lm_tiny (BatchNorm + extras, GELU before, no scaling)", &cfg);
}

#[test]
fn lm_power_softmax() {
    let cfg = ModelConfig {
        attention: AttentionKind::PowerSoftmax { p: 4, eps: 1e-3 },
        ..ModelConfig::lm_tiny()
    };
    check_language("lm_tiny (Power-Softmax p 4)", &cfg);
}

#[test]
fn lm_original_softmax_causal() {
    check_language("lm_tiny original", &ModelConfig::lm_tiny().original());
}

#[test]
fn checkpoint_round_trip() {
    let cfg = ModelConfig::vit_tiny();
    let data = task_data(&cfg, 16);
    let model = trained(&cfg, &data);
    let weights = export_f64(&model).unwrap();
    let (polys, _) = fit(&model, &data);
    let dir = std::env::temp_dir().join(format!("reference-ckpt-{}", std::process::id()));
    let meta = CheckpointMeta {
        version: CHECKPOINT_VERSION,
        stage: Stage::Polynomial,
        config: cfg,
        data: DataPrep::Images {
            dataset: "random".into(),
            mean: 0.5,
            std: 0.3,
        },
        ranges: None,
        fit: Some(FitConfig::default()),
        polys: Some(polys.clone()),
        metrics: BTreeMap::new(),
    };
    Checkpoint::save(&dir, &model, &meta).unwrap();
    let loaded = ReferenceModel::from_checkpoint(&dir);
    std::fs::remove_dir_all(&dir).ok();
    let loaded = loaded.unwrap();
    let direct = ReferenceModel::new(&cfg, &weights, Some(&polys)).unwrap();
    // Weights (safetensors F64) and polynomials (JSON with serde_json's float_roundtrip) travel bit
    // for bit.
    let strip = |m: &ReferenceModel| ReferenceModel {
        polys: None,
        ..m.clone()
    };
    assert!(strip(&loaded) == strip(&direct), "loaded weights differ");
    assert!(loaded.polys == direct.polys, "loaded polynomials differ");
    let (_, px, _) = images(&data, 2);
    assert_eq!(
        loaded.forward_images(&px).unwrap(),
        direct.forward_images(&px).unwrap()
    );

    let missing = ReferenceModel::from_checkpoint(&PathBuf::from("/nonexistent/reference-ckpt"));
    assert!(
        matches!(missing, Err(ReferenceError::Checkpoint(_))),
        "{missing:?}"
    );
}

#[test]
fn bad_weights_config_and_inputs_are_errors() {
    let cfg = ModelConfig::vit_tiny();
    let weights = export_f64(&fresh(&cfg)).unwrap();
    assert!(ReferenceModel::new(&cfg, &weights, None).is_ok());

    for name in [
        "head.bias",
        "blocks.0.attn.head_bn.running_var",
        "blocks.0.norm2.bn.gamma",
        "pos",
    ] {
        let mut w = weights.clone();
        w.remove(name);
        let r = ReferenceModel::new(&cfg, &w, None);
        assert!(
            matches!(&r, Err(ReferenceError::MissingTensor(n)) if n == name),
            "{name}: {r:?}"
        );
    }

    let mut w = weights.clone();
    let (shape, values) = w["blocks.0.attn.qkv.weight"].clone();
    assert_eq!(shape, vec![16, 48]);
    w.insert("blocks.0.attn.qkv.weight".into(), (vec![48, 16], values));
    let r = ReferenceModel::new(&cfg, &w, None);
    assert!(
        matches!(&r, Err(ReferenceError::Shape { name, .. }) if name == "blocks.0.attn.qkv.weight"),
        "{r:?}"
    );

    let mut w = weights.clone();
    w.insert("head.bias".into(), (vec![10], vec![0.0; 9]));
    let r = ReferenceModel::new(&cfg, &w, None);
    assert!(matches!(&r, Err(ReferenceError::InvalidTensor { .. })), "{r:?}");

    let mut w = weights.clone();
    w.insert("norm.bn.running_var".into(), (vec![16], vec![-1.0; 16]));
    let r = ReferenceModel::new(&cfg, &w, None);
    assert!(matches!(&r, Err(ReferenceError::InvalidTensor { .. })), "{r:?}");

    // Weights of a LayerNorm model under a BatchNorm configuration.
    let ln = export_f64(&fresh(&cfg.original())).unwrap();
    let r = ReferenceModel::new(&cfg, &ln, None);
    assert!(matches!(&r, Err(ReferenceError::MissingTensor(_))), "{r:?}");

    let bad = ModelConfig { heads: 3, ..cfg };
    let r = ReferenceModel::new(&bad, &weights, None);
    assert!(matches!(&r, Err(ReferenceError::Config(_))), "{r:?}");

    let reference = ReferenceModel::new(&cfg, &weights, None).unwrap();
    assert!(matches!(
        reference.forward_image(&[0.0; 63]),
        Err(ReferenceError::Input(_))
    ));
    assert!(matches!(
        reference.forward_tokens(&[1, 2]),
        Err(ReferenceError::Input(_))
    ));
    assert_eq!(reference.forward_image(&[0.0; 64]).unwrap().len(), 10);

    let lm = ModelConfig::lm_tiny();
    let reference = ReferenceModel::new(&lm, &export_f64(&fresh(&lm)).unwrap(), None).unwrap();
    assert!(matches!(
        reference.forward_tokens(&[]),
        Err(ReferenceError::Input(_))
    ));
    assert!(matches!(
        reference.forward_tokens(&[0; 9]),
        Err(ReferenceError::Input(_))
    ));
    assert!(matches!(
        reference.forward_tokens(&[32]),
        Err(ReferenceError::Input(_))
    ));
    assert!(matches!(
        reference.forward_image(&[0.0; 64]),
        Err(ReferenceError::Input(_))
    ));
    assert_eq!(reference.forward_tokens(&[31, 0, 5]).unwrap().len(), 3);
}

#[test]
fn dense_folding_matches_affine_composition() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut r = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.random_range(-2.0..2.0)).collect() };
    let dense = Dense {
        weight: r(12),
        rows: 3,
        cols: 4,
        bias: r(4),
    };
    let (s_in, t_in, s_out, t_out, x) = (r(3), r(3), r(4), r(4), r(3));
    let mut folded = dense.clone();
    folded.fold_input(&s_in, &t_in);
    folded.fold_output(&s_out, &t_out);
    let pre: Vec<f64> = x
        .iter()
        .zip(&s_in)
        .zip(&t_in)
        .map(|((x, s), t)| x * s + t)
        .collect();
    let want: Vec<f64> = dense
        .apply(&pre)
        .iter()
        .zip(&s_out)
        .zip(&t_out)
        .map(|((y, s), t)| y * s + t)
        .collect();
    let got = folded.apply(&x);
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

/// The site audit runs the polynomial model item by item: with every interval widened far beyond the
/// inputs nothing is flagged; with the last site's interval shrunk to a sliver, that site (and only it)
/// is flagged on every held-out item, as the first to leave its interval.
#[test]
fn site_audit_flags_the_site_that_leaves_its_interval() {
    use transformer::model::audit_sites;
    let cfg = ModelConfig::lm_tiny();
    let data = task_data(&cfg, 32);
    let model = trained(&cfg, &data);
    let (mut polys, _) = fit(&model, &data);
    for fitted in polys.sites.values_mut() {
        fitted.interval.min -= 1e6;
        fitted.interval.max += 1e6;
    }
    let wide = audit_sites(&model, &polys, &data, 8);
    assert_eq!(wide.len(), polys.sites.len(), "every fitted site is audited");
    assert!(
        wide.iter()
            .all(|a| a.items_outside == 0 && a.seen.min <= a.seen.max),
        "{wide:?}"
    );
    let last = wide.last().unwrap().site.clone();
    let seen = wide.last().unwrap().seen;
    let mid = 0.5 * (seen.min + seen.max);
    let fitted = polys.sites.get_mut(&last).unwrap();
    fitted.interval.min = mid;
    fitted.interval.max = mid;
    let narrow = audit_sites(&model, &polys, &data, 8);
    for a in &narrow {
        let expected = if a.site == last { 8 } else { 0 };
        assert_eq!(
            (a.items_outside, a.items_first_outside),
            (expected, expected),
            "{a:?}"
        );
    }
}
