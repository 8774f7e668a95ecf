//! Training throughput of the CPU-scale poly-ViT preset (`ModelConfig::vit_cpu`), to set beside
//! `scripts/fwbench/torch/vit_cpu_preset.py`: batch 128 of one fixed random batch, AdamW, global-norm
//! clipping, median of 50 steps after 10 warm-up steps.
//!
//! `RAYON_NUM_THREADS=1 MATMUL_NUM_THREADS=1 cargo run --release -p transformer --example train_step`

use std::time::Instant;

use burn::module::Module;
use burn::tensor::backend::Backend;
use transformer::data::ImageSet;
use transformer::model::{CpuTrain, ModelConfig, TaskData, TrainConfig, Transformer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = ModelConfig::vit_cpu();
    let batch = 128;
    let pixels: Vec<f32> = (0..batch * 784)
        .map(|i| ((i * 7919) % 256) as f32 / 255.0)
        .collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let set = ImageSet::new("random", (1, 28, 28), 10, pixels, labels)?;
    let data = TaskData::images(set.clone(), set);
    let device = Default::default();
    CpuTrain::seed(&device, 0);
    let mut model = Transformer::<CpuTrain>::new(&cfg, &device);
    println!("parameters: {}", model.num_params());
    let tc = TrainConfig {
        epochs: 1,
        batch,
        lr: 2e-3,
        weight_decay: 0.05,
        warmup: 0.0,
        clip: 1.0,
        seed: 0,
        log_every: 0,
        range: None,
    };
    let mut times = Vec::new();
    for i in 0..60 {
        let t = Instant::now();
        // One epoch over one batch = one step (the held-out evaluation is limited to 1 item).
        let (m, _) = transformer::model::train(model, &data, &tc, None, None, Some(1), "bench")?;
        model = m;
        if i >= 10 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!(
        "ours (burn ndarray): {:.2} ms/step, {:.0} samples/s",
        med * 1e3,
        batch as f64 / med
    );
    Ok(())
}
