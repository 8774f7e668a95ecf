//! Checks on the real data that `scripts/fetch_data.sh` brings into `data/` (or `$HE_DATA_DIR`).
//! Ignored by default; run after fetching with
//! `scripts/fetch_data.sh all && cargo test -p transformer real_data -- --ignored`.

use crate::data::{self, ImageSet, ImageSplit, Split};

fn check_image_set(set: &ImageSet, n: usize, side: usize, counts: &[usize]) {
    assert_eq!(set.len(), n);
    assert_eq!(
        (set.channels(), set.height(), set.width(), set.num_classes()),
        (1, side, side, counts.len())
    );
    assert_eq!(set.pixels().len(), n * side * side);
    assert!(set.pixels().iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(set.labels().iter().all(|&l| l < counts.len()));
    assert_eq!(set.class_counts(), counts);
}

fn mean(xs: &[f32]) -> f64 {
    xs.iter().map(|&x| f64::from(x)).sum::<f64>() / xs.len() as f64
}

#[test]
#[ignore = "needs scripts/fetch_data.sh fashion-mnist"]
fn fashion_mnist_shapes_and_histogram() {
    let train = data::fashion_mnist(ImageSplit::Train).unwrap();
    check_image_set(&train, 60_000, 28, &[6_000; 10]);
    let test = data::fashion_mnist(ImageSplit::Test).unwrap();
    check_image_set(&test, 10_000, 28, &[1_000; 10]);
    // the published per-pixel mean of the training set is 0.2860
    let m = mean(train.pixels());
    assert!((m - 0.2860).abs() < 1e-3, "mean pixel {m}");
}

#[test]
#[ignore = "needs scripts/fetch_data.sh mnist"]
fn mnist_shapes_and_histogram() {
    let train = data::mnist(ImageSplit::Train).unwrap();
    check_image_set(
        &train,
        60_000,
        28,
        &[5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    );
    let test = data::mnist(ImageSplit::Test).unwrap();
    check_image_set(
        &test,
        10_000,
        28,
        &[980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    );
    // the published per-pixel mean of the training set is 0.1307
    let m = mean(train.pixels());
    assert!((m - 0.1307).abs() < 1e-3, "mean pixel {m}");
}

#[test]
#[ignore = "needs scripts/fetch_data.sh digits"]
fn digits_shapes_and_histogram() {
    let set = data::digits().unwrap();
    check_image_set(&set, 1797, 8, &[178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
}

#[test]
#[ignore = "needs scripts/fetch_data.sh wiki"]
fn wikipedia_summaries_split() {
    let s = data::wiki_summaries().unwrap();
    assert_eq!(s.len(), 10_033);
    let words: usize = [Split::Train, Split::Valid, Split::Test]
        .iter()
        .map(|&p| s.word_count(p))
        .sum();
    assert_eq!(words, 775_848);
    let train_frac = s.train.len() as f64 / s.len() as f64;
    assert!((0.88..0.92).contains(&train_frac), "train fraction {train_frac}");
    assert!(
        s.valid.len() > 350 && s.test.len() > 350,
        "{} {}",
        s.valid.len(),
        s.test.len()
    );
    assert_eq!(s, data::wiki_summaries().unwrap(), "split must be deterministic");
    let tok = data::WordTokenizer::fit(
        &s.joined(Split::Train),
        data::WordTokenizerConfig {
            split: data::WordSplit::Punctuation,
            ..Default::default()
        },
    );
    assert!(tok.vocab_size() > 20_000, "vocab {}", tok.vocab_size());
    let ids = tok.encode(&s.joined(Split::Valid));
    let unk = ids.iter().filter(|&&i| i == tok.unk_id()).count() as f64 / ids.len() as f64;
    assert!(unk < 0.1, "valid <unk> rate {unk}");
}

#[test]
#[ignore = "needs scripts/fetch_data.sh sotu"]
fn sotu_speeches() {
    let s = data::sotu().unwrap();
    assert_eq!(s.len(), 233);
    let words: usize = [Split::Train, Split::Valid, Split::Test]
        .iter()
        .map(|&p| s.word_count(p))
        .sum();
    assert_eq!(words, 1_794_884);
    assert!(!s.valid.is_empty() && !s.test.is_empty());
}

#[test]
#[ignore = "needs scripts/fetch_data.sh shakespeare"]
fn shakespeare_chars() {
    let s = data::shakespeare().unwrap();
    let words: usize = [Split::Train, Split::Valid, Split::Test]
        .iter()
        .map(|&p| s.word_count(p))
        .sum();
    assert_eq!(words, 905_018);
    let train = s.joined(Split::Train);
    let tok = data::CharTokenizer::fit(&train);
    assert!(
        (60..200).contains(&tok.vocab_size()),
        "alphabet {}",
        tok.vocab_size()
    );
    let valid = s.joined(Split::Valid);
    assert_eq!(tok.decode(&tok.encode(&valid[..2000])), valid[..2000]);
}

#[test]
#[ignore = "needs scripts/fetch_data.sh minilm"]
fn minilm_files() {
    let dir = data::data_dir().join("models").join("all-minilm-l6-v2");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let params: u64 = header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__" && k.as_str() != "embeddings.position_ids")
        .map(|(_, v)| {
            v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product::<u64>()
        })
        .sum();
    assert_eq!(params, 22_713_216);
    assert_eq!(
        header["embeddings.word_embeddings.weight"]["shape"],
        serde_json::json!([30522, 384])
    );
    let vocab = std::fs::read_to_string(dir.join("vocab.txt")).unwrap();
    assert_eq!(vocab.lines().count(), 30522);
    assert!(dir.join("tokenizer.json").is_file() && dir.join("config.json").is_file());
}
