//! Tiny-preset tests of the burn model, training, range minimisation, polynomial substitution and
//! checkpoints (seconds on two cores).

use burn::module::AutodiffModule;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use transformer::model::checkpoint::{export_f64, parse_f64_safetensors, read_f64_safetensors};
use transformer::model::nn::apply_poly;
use transformer::model::sites::{fit_site, Chebyshev, Range};
use transformer::model::{
    evaluate, record_ranges, train, Activation, AttentionKind, Checkpoint, CheckpointMeta, Cpu, CpuTrain,
    FitConfig, Forward, ModelConfig, PolySet, RangeLoss, SiteKind, SitePoly, Stage, TaskConfig, TaskData,
    TrainConfig, Transformer,
};
use transformer::pipeline::synthetic;

fn device() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

fn tcfg(epochs: usize, batch: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        lr: 3e-3,
        weight_decay: 0.0,
        warmup: 0.0,
        clip: 1.0,
        seed: 0,
        log_every: 1,
        range: None,
    }
}

fn test_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("transformer-model-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn forward_shapes() {
    let dev = device();
    let mut with_cls = ModelConfig::vit_tiny();
    if let TaskConfig::Vision {
        ref mut class_token, ..
    } = with_cls.task
    {
        *class_token = true;
    }
    for cfg in [
        ModelConfig::vit_tiny(),
        ModelConfig::vit_tiny().original(),
        with_cls,
    ] {
        let m = Transformer::<Cpu>::new(&cfg, &dev);
        let x = Tensor::<Cpu, 4>::random([3, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
        assert_eq!(m.forward_images(x, &mut Forward::exact()).dims(), [3, 10]);
    }
    let mut power = ModelConfig::lm_tiny();
    power.attention = AttentionKind::PowerSoftmax { p: 4, eps: 1e-3 };
    for cfg in [ModelConfig::lm_tiny(), ModelConfig::lm_tiny().original(), power] {
        let ids =
            Tensor::<Cpu, 2, Int>::from_data(TensorData::new((0..16i64).collect::<Vec<_>>(), [2, 8]), &dev);
        let m = Transformer::<Cpu>::new(&cfg, &dev);
        assert_eq!(
            m.forward_tokens(ids.clone(), &mut Forward::exact()).dims(),
            [2, 8, 32]
        );
        let mt = Transformer::<CpuTrain>::new(&cfg, &dev);
        let ids_t = Tensor::<CpuTrain, 2, Int>::from_data(ids.into_data(), &dev);
        assert_eq!(mt.forward_tokens(ids_t, &mut Forward::exact()).dims(), [2, 8, 32]);
    }
}

#[test]
fn causal_model_ignores_the_future() {
    let dev = device();
    for cfg in [ModelConfig::lm_tiny(), ModelConfig::lm_tiny().original()] {
        let m = Transformer::<Cpu>::new(&cfg, &dev);
        let a: Vec<i64> = vec![1, 2, 3, 4, 5, 6, 7, 8];
        let mut b = a.clone();
        b[7] = 20; // change only the last token
        let run = |v: Vec<i64>| {
            let ids = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(v, [1, 8]), &dev);
            m.forward_tokens(ids, &mut Forward::exact())
                .into_data()
                .to_vec::<f32>()
                .unwrap()
        };
        let (la, lb) = (run(a), run(b));
        // positions 0..7 see the same prefix: identical logits; position 7 differs.
        assert_eq!(la[..7 * 32], lb[..7 * 32]);
        assert_ne!(la[7 * 32..], lb[7 * 32..]);
    }
}

#[test]
fn loss_decreases_on_a_fixed_batch() {
    for cfg in [ModelConfig::vit_tiny(), ModelConfig::lm_tiny()] {
        let (data, _) = synthetic(&cfg);
        let data = match data {
            TaskData::Images { train, test, .. } => TaskData::images(train.take(32), test),
            TaskData::Tokens { train, test, seq_len } => TaskData::Tokens {
                train: train[..32 * seq_len + 1].to_vec(),
                test,
                seq_len,
            },
        };
        CpuTrain::seed(&device(), 3);
        let m = Transformer::<CpuTrain>::new(&cfg, &device());
        // One batch holding all 32 items: every step sees the same batch.
        let steps = if cfg.is_language() { 120 } else { 40 };
        let (_, hist) = train(m, &data, &tcfg(steps, 32), None, None, Some(64), "test").unwrap();
        let first = hist.steps.first().unwrap().1;
        let last = hist.steps.last().unwrap().1;
        assert!(!hist.diverged);
        assert!(last < 0.5 * first, "{cfg:?}: loss {first} -> {last}");
    }
}

#[test]
fn range_loss_drives_recorded_maxima_down() {
    for cfg in [ModelConfig::vit_tiny(), ModelConfig::lm_tiny()] {
        let (data, _) = synthetic(&cfg);
        CpuTrain::seed(&device(), 5);
        let m = Transformer::<CpuTrain>::new(&cfg, &device());
        let (m, _) = train(m, &data, &tcfg(2, 32), None, None, Some(64), "base").unwrap();
        let before = record_ranges(&m.valid(), &data, 64, 256);
        let (act0, var0) = before.summary();
        let mut rc = tcfg(8, 32);
        rc.range = Some(RangeLoss {
            alpha: 50.0,
            beta: 50.0,
            act_bound: act0 / 4.0,
            var_bound: (var0 / 4.0).max(1e-3),
        });
        let (m, _) = train(m, &data, &rc, None, None, Some(64), "range").unwrap();
        let after = record_ranges(&m.valid(), &data, 64, 256);
        let (act1, var1) = after.summary();
        assert!(act1 < 0.8 * act0, "{cfg:?}: max |act input| {act0} -> {act1}");
        if cfg.is_language() {
            assert!(var1 < 0.8 * var0, "max LayerNorm var {var0} -> {var1}");
        }
    }
}

#[test]
fn tensor_polynomials_match_f64_evaluation() {
    let cfg = FitConfig::default();
    let sites = [
        fit_site(
            SiteKind::Act(Activation::Gelu),
            Range { min: -8.0, max: 8.0 },
            &cfg,
        )
        .unwrap(),
        fit_site(
            SiteKind::Act(Activation::Relu),
            Range { min: -4.0, max: 4.0 },
            &cfg,
        )
        .unwrap(),
        fit_site(SiteKind::InvSqrt, Range { min: 0.1, max: 20.0 }, &cfg).unwrap(),
        fit_site(SiteKind::Reciprocal, Range { min: 0.5, max: 8.0 }, &cfg).unwrap(),
    ];
    let dev = device();
    for s in &sites {
        let xs: Vec<f64> = (0..=200)
            .map(|i| s.interval.min + (s.interval.max - s.interval.min) * i as f64 / 200.0)
            .collect();
        let t = Tensor::<Cpu, 1>::from_data(
            TensorData::new(xs.iter().map(|&x| x as f32).collect::<Vec<_>>(), [201]),
            &dev,
        );
        let got = apply_poly(&s.poly, t).into_data().to_vec::<f32>().unwrap();
        let scale = xs.iter().map(|&x| s.poly.eval(x).abs()).fold(1.0, f64::max);
        for (x, g) in xs.iter().zip(got) {
            let want = s.poly.eval(*x as f32 as f64);
            assert!(
                ((g as f64) - want).abs() <= 2e-5 * scale,
                "{:?} at {x}: {g} vs {want}",
                s.kind
            );
        }
    }
}

#[test]
fn polynomial_model_equals_exact_where_the_polynomial_is_exact() {
    // A site polynomial that is exact on the inputs: GELU interpolated at degree 96 on [-12, 12]
    // (error < 1e-7), in every activation site; the polynomial model must give the exact model's logits.
    let cfg = ModelConfig::vit_tiny();
    let (data, _) = synthetic(&cfg);
    CpuTrain::seed(&device(), 9);
    let m = Transformer::<CpuTrain>::new(&cfg, &device());
    let (m, _) = train(m, &data, &tcfg(1, 32), None, None, Some(64), "t").unwrap();
    let v = m.valid();
    let rec = record_ranges(&v, &data, 64, 512);
    assert!(rec.summary().0 < 12.0);
    let p = poly_approx::chebyshev::interpolate(
        poly_approx::functions::gelu,
        poly_approx::Interval::new(-12.0, 12.0).unwrap(),
        96,
    )
    .unwrap();
    let mut polys = PolySet::default();
    for (site, (kind, range)) in &rec.sites {
        let mut f = fit_site(*kind, *range, &FitConfig::default()).unwrap();
        f.poly = SitePoly::Chebyshev(Chebyshev {
            a: -12.0,
            b: 12.0,
            coeffs: p.coeffs().to_vec(),
        });
        polys.sites.insert(site.clone(), f);
    }
    let exact = evaluate(&v, &data, None, 64, None);
    let poly = evaluate(&v, &data, Some(&polys), 64, None);
    assert!((exact.loss - poly.loss).abs() < 1e-5, "{exact:?} vs {poly:?}");
    assert_eq!(exact.accuracy, poly.accuracy);
}

#[test]
fn checkpoint_round_trip() {
    let dev = device();
    let cfg = ModelConfig::vit_tiny();
    let (data, prep) = synthetic(&cfg);
    CpuTrain::seed(&dev, 2);
    let (m, _) = train(
        Transformer::<CpuTrain>::new(&cfg, &dev),
        &data,
        &tcfg(1, 32),
        None,
        None,
        Some(32),
        "c",
    )
    .unwrap();
    let v = m.valid();
    let rec = record_ranges(&v, &data, 64, 128);
    let polys = PolySet::fit(&rec, &FitConfig::default()).unwrap();
    let meta = CheckpointMeta {
        version: transformer::model::checkpoint::CHECKPOINT_VERSION,
        stage: Stage::Polynomial,
        config: cfg,
        data: prep,
        ranges: Some(rec),
        fit: Some(FitConfig::default()),
        polys: Some(polys.clone()),
        metrics: Default::default(),
    };
    let dir = test_dir("ckpt");
    Checkpoint::save(&dir, &v, &meta).unwrap();
    let (back, meta2) = Checkpoint::load::<Cpu>(&dir, &dev).unwrap();
    assert_eq!(meta, meta2);
    let x = Tensor::<Cpu, 4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 1.0), &dev);
    let a = v
        .forward_images(x.clone(), &mut Forward::polynomial(&polys))
        .into_data();
    let b = back
        .forward_images(x, &mut Forward::polynomial(&polys))
        .into_data();
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    // The f64 export holds every tensor, BatchNorm statistics included, equal to the f32 values.
    let w = read_f64_safetensors(&dir.join("weights_f64.safetensors")).unwrap();
    assert_eq!(w, export_f64(&v).unwrap());
    assert!(w.contains_key("blocks.0.norm1.bn.running_var"));
    assert!(w.contains_key("blocks.0.attn.head_bn.gamma") && w.contains_key("blocks.0.mlp.bn.running_mean"));
    // Truncated or corrupted files are errors, never panics.
    let bytes = std::fs::read(dir.join("weights_f64.safetensors")).unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(parse_f64_safetensors(&bytes[..cut]).is_err(), "cut {cut}");
    }
    let mut bad = bytes.clone();
    bad[0] = 0xff;
    assert!(parse_f64_safetensors(&bad).is_err());
    // A config that does not match the weights is refused.
    let mut m3 = meta2.clone();
    m3.config.dim = 32;
    std::fs::write(dir.join("checkpoint.json"), serde_json::to_vec(&m3).unwrap()).unwrap();
    assert!(Checkpoint::load::<Cpu>(&dir, &dev).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tiny_pipeline_runs_every_stage() {
    use transformer::pipeline::{run_pipeline, PipelineConfig};
    let mut pc = PipelineConfig::vit_tiny();
    let (data, prep) = synthetic(&pc.model);
    pc.poly_tune = Some(tcfg(1, 16));
    let dir = test_dir("pipeline");
    let r = run_pipeline::<CpuTrain>(&pc, &data, &prep, &dir, &device()).unwrap();
    let stages: Vec<Stage> = r.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Original,
            Stage::HeFriendly,
            Stage::RangeMin,
            Stage::Polynomial,
            Stage::PolynomialTuned
        ]
    );
    for s in &r.stages {
        assert!(s.metrics.loss.is_finite() && s.metrics.count == 128, "{s:?}");
    }
    // Re-running loads every stage from disk and reproduces the metrics.
    let r2 = run_pipeline::<CpuTrain>(&pc, &data, &prep, &dir, &device()).unwrap();
    for (a, b) in r.stages.iter().zip(&r2.stages) {
        assert!((a.metrics.loss - b.metrics.loss).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    let meta = Checkpoint::meta(&dir.join("polynomial")).unwrap();
    assert!(meta.polys.is_some_and(|p| p.sites.len() == 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn training_resumes_from_its_last_epoch() {
    let cfg = ModelConfig::vit_tiny();
    let (data, _) = synthetic(&cfg);
    let dir = test_dir("resume");
    CpuTrain::seed(&device(), 4);
    let m = Transformer::<CpuTrain>::new(&cfg, &device());
    let (m1, h1) = train(m, &data, &tcfg(1, 64), None, Some(&dir), Some(32), "r1").unwrap();
    assert_eq!(h1.epochs.len(), 1);
    // A second call asking for two epochs resumes after the first (model and optimiser state from disk)
    // and trains only the second; starting from a fresh model proves the weights come from the file.
    let fresh = Transformer::<CpuTrain>::new(&cfg, &device());
    let (m2, h2) = train(fresh, &data, &tcfg(2, 64), None, Some(&dir), Some(32), "r2").unwrap();
    assert_eq!(h2.epochs.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(h2.epochs[0].1, h1.epochs[0].1);
    let w1 = export_f64(&m1.valid()).unwrap();
    let w2 = export_f64(&m2.valid()).unwrap();
    assert_ne!(w1["head.weight"], w2["head.weight"], "the second epoch trained");
    let _ = std::fs::remove_dir_all(&dir);
}
