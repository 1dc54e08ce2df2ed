//! The index schema and the index build.
//!
//! An index directory holds the tantivy index (one segment) and `search-meta.json`: the
//! domain codes of the fast fields, the synonym groups and pinyin lexicon applied at query
//! time, and the titles for suggestions. Both are written once, when a content version is
//! activated, and only read afterwards.

use std::path::Path;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
    STRING,
};
use tantivy::{Index, TantivyDocument};

use super::normalize::normalize;
use super::tokenize::{KioskTokenizer, BIGRAM, INITIALS, PINYIN, UNIGRAM};
use super::SearchError;
use crate::content::{Body, Kind, Merged, Validity};

pub const META_FILE: &str = "search-meta.json";
/// Bumped when the schema or the meaning of the meta file changes; an index of another
/// format is refused (the kiosk rebuilds it from the content version's database).
pub const FORMAT: u32 = 1;

#[derive(Clone, Copy)]
pub struct Fields {
    pub id: Field,
    pub title: Field,
    pub title_uni: Field,
    pub body: Field,
    pub body_uni: Field,
    pub pinyin: Field,
    pub initials: Field,
    pub title_key: Field,
    pub kind: Field,
    pub validity: Field,
    pub domain: Field,
    pub date: Field,
    /// The item's position in the merged content: the last tie-break of the ranking, so
    /// equal hits come in the same order on every kiosk whatever order the indexing
    /// threads wrote them in.
    pub ord: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tok: &str, positions: bool| {
        let opt = if positions {
            IndexRecordOption::WithFreqsAndPositions
        } else {
            IndexRecordOption::WithFreqs
        };
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default().set_tokenizer(tok).set_index_option(opt),
        )
    };
    let fast = NumericOptions::default().set_fast();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        title: b.add_text_field("title", text(BIGRAM, true).set_stored()),
        title_uni: b.add_text_field("title_uni", text(UNIGRAM, false)),
        body: b.add_text_field("body", text(BIGRAM, true).set_stored()),
        body_uni: b.add_text_field("body_uni", text(UNIGRAM, false)),
        pinyin: b.add_text_field("pinyin", text(PINYIN, true)),
        initials: b.add_text_field("initials", text(INITIALS, true)),
        title_key: b.add_text_field("title_key", STRING),
        kind: b.add_u64_field("kind", fast.clone()),
        validity: b.add_u64_field("validity", fast.clone()),
        domain: b.add_u64_field("domain", fast.clone()),
        date: b.add_i64_field("date", fast.clone()),
        ord: b.add_u64_field("ord", fast),
    };
    (b.build(), fields)
}

pub fn register_tokenizers(index: &Index) {
    use super::tokenize::Kind as T;
    let t = index.tokenizers();
    t.register(BIGRAM, KioskTokenizer(T::Bigram));
    t.register(UNIGRAM, KioskTokenizer(T::Unigram));
    t.register(PINYIN, KioskTokenizer(T::Pinyin));
    t.register(INITIALS, KioskTokenizer(T::Initials));
}

/// The exact-title key: the normalised title without spaces.
pub fn title_key(s: &str) -> String {
    normalize(s).chars().filter(|c| *c != ' ').collect()
}

pub fn kind_code(k: Kind) -> u64 {
    Kind::ALL.iter().position(|x| *x == k).unwrap_or(0) as u64
}

pub fn kind_from_code(c: u64) -> Kind {
    Kind::ALL.get(c as usize).copied().unwrap_or(Kind::Policy)
}

pub fn validity_code(v: Validity) -> u64 {
    Validity::ALL.iter().position(|x| *x == v).unwrap_or(0) as u64
}

pub fn validity_from_code(c: u64) -> Validity {
    Validity::ALL.get(c as usize).copied().unwrap_or_default()
}

pub fn date_code(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

pub fn date_from_code(c: i64) -> Option<NaiveDate> {
    i32::try_from(c).ok().and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// What the searcher needs besides the tantivy index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    /// Domain names; a document's `domain` fast field is the index here plus one (0: none).
    pub domains: Vec<String>,
    /// Synonym groups as the admin wrote them.
    pub synonyms: Vec<Vec<String>>,
    /// Key terms (keywords, topics, synonyms, domains) that a pinyin query may stand for.
    pub lexicon: Vec<String>,
    pub titles: Vec<TitleEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TitleEntry {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    pub in_force: bool,
}

/// Builds the index of `merged` into `dir`, which must exist and be empty.
pub fn build(dir: &Path, merged: &Merged) -> Result<(), SearchError> {
    if std::fs::read_dir(dir)?.next().is_some() {
        return Err(SearchError::NotEmpty(dir.to_path_buf()));
    }
    let (schema, f) = schema();
    let index = Index::create_in_dir(dir, schema)?;
    register_tokenizers(&index);

    let mut domains: Vec<String> =
        merged.items.iter().filter_map(|s| s.item.domain.clone()).collect();
    domains.sort();
    domains.dedup();
    let mut lexicon: Vec<String> = domains.clone();
    let mut titles = Vec::with_capacity(merged.items.len());

    // Two threads at most: a kiosk board has few cores and the UI keeps running meanwhile.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(2);
    let mut writer: tantivy::IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(threads, 100_000_000)?;
    for (ord, scoped) in merged.items.iter().enumerate() {
        let item = &scoped.item;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &item.id);
        doc.add_text(f.title, &item.title);
        doc.add_text(f.title_uni, &item.title);
        doc.add_text(f.title_key, title_key(&item.title));
        let body = item.text_fields().join("\n");
        doc.add_text(f.body, &body);
        doc.add_text(f.body_uni, &body);
        let mut key_terms = item.title.clone();
        if let Body::Policy(p) = &item.body {
            for k in p.keywords.iter().chain(&p.topics) {
                key_terms.push('\n');
                key_terms.push_str(k);
                lexicon.push(k.clone());
            }
        }
        doc.add_text(f.pinyin, &key_terms);
        doc.add_text(f.initials, &key_terms);
        doc.add_u64(f.kind, kind_code(item.kind()));
        doc.add_u64(f.validity, validity_code(item.validity()));
        let domain = item
            .domain
            .as_ref()
            .and_then(|d| domains.binary_search(d).ok())
            .map_or(0, |i| i as u64 + 1);
        doc.add_u64(f.domain, domain);
        if let Some(d) = item.date() {
            doc.add_i64(f.date, date_code(d));
        }
        doc.add_u64(f.ord, ord as u64);
        writer.add_document(doc)?;
        titles.push(TitleEntry {
            id: item.id.clone(),
            kind: item.kind(),
            title: item.title.clone(),
            in_force: item.validity().in_force(),
        });
    }
    writer.commit()?;
    // One segment answers faster than several and the index never changes afterwards.
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()?;

    let synonyms: Vec<Vec<String>> = merged.synonyms.iter().map(|g| g.terms.clone()).collect();
    lexicon.extend(synonyms.iter().flatten().cloned());
    lexicon.sort();
    lexicon.dedup();
    let meta = Meta { format: FORMAT, domains, synonyms, lexicon, titles };
    let json = serde_json::to_vec(&meta).map_err(|e| SearchError::Meta(dir.join(META_FILE), e))?;
    write_synced(&dir.join(META_FILE), &json)?;
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}
