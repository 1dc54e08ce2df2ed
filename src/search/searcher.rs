//! Answering queries: query planning (terms, synonyms, pinyin), ranking tiers, filters,
//! facet counts, snippets and suggestions, over an index opened read-only.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tantivy::directory::{
    error::{DeleteError, LockError, OpenReadError, OpenWriteError},
    DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};
use tantivy::query::{
    Bm25Weight, BooleanQuery, EmptyQuery, EnableScoring, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{
    DocAddress, DocId, DocSet, Index, IndexReader, ReloadPolicy, TantivyDocument, Term, TERMINATED,
};

use super::index::{
    self, date_code, date_from_code, kind_code, kind_from_code, validity_code, validity_from_code,
    Fields, Meta, META_FILE,
};
use super::normalize::{chinese_ordinals, normalize, query_terms};
use super::snippet::{fragments, Fragment};
use super::tokenize::{bigrams, pinyin_of, segment_pinyin};
use super::SearchError;
use crate::content::{Kind, Validity};

/// Characters of body text shown around the first match.
pub const SNIPPET_CHARS: usize = 80;
/// Longest query taken into account; touch keyboards do not produce more.
const MAX_QUERY_CHARS: usize = 64;
/// Ways one pinyin term is read at most (xian → xian, xi an).
const MAX_SEGMENTATIONS: usize = 4;
/// Synonym variants of one term at most.
const MAX_VARIANTS: usize = 16;
/// Matches read from the fast fields at once.
const BATCH: usize = 128;
/// Key terms a pinyin prefix expands to at most.
const MAX_LEXICON_PREFIX: usize = 8;

/// One search: the text a resident typed, the filters they chose, and the page wanted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query: String,
    #[serde(default)]
    pub filters: Filters,
    pub limit: usize,
    #[serde(default)]
    pub offset: usize,
}

/// Filters; an empty list means "any". Dates are inclusive; items without a date are
/// left out when a date range is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub kinds: Vec<Kind>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub validity: Vec<Validity>,
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SearchResults {
    /// How many items match the query and all filters.
    pub total: usize,
    /// The requested page, best first.
    pub hits: Vec<Hit>,
    pub facets: Facets,
}

/// How a hit matched, best first; the hits are ranked by this before anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Found only through a synonym in the text, or by pinyin initials.
    Related,
    /// The text contains the query.
    Text,
    /// The title contains a synonym of the query.
    TitleSynonym,
    /// The title contains the query (or its pinyin).
    Title,
    /// The title is the query.
    ExactTitle,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    /// The title with the matched parts marked.
    pub title_fragments: Vec<Fragment>,
    /// About [`SNIPPET_CHARS`] characters of the text around the first match.
    pub snippet: Vec<Fragment>,
    /// The text-relevance score (BM25); the rank also weighs `matched`, validity and date.
    pub score: f32,
    pub matched: Match,
    pub validity: Validity,
    pub date: Option<NaiveDate>,
    pub domain: Option<String>,
}

/// Counts per filter value for the current query. Each dimension is counted with the
/// other dimensions' filters applied but not its own, so a resident sees what choosing
/// another value would give. Sorted by count, largest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facets {
    pub kinds: Vec<(Kind, usize)>,
    pub domains: Vec<(String, usize)>,
    pub validity: Vec<(Validity, usize)>,
    pub years: Vec<(i32, usize)>,
}

/// A title suggested while the resident types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: String,
    pub kind: Kind,
    pub title: String,
}

/// An open index. Cheap to clone and safe to share between threads; every search takes a
/// consistent snapshot of the (immutable) index.
#[derive(Clone)]
pub struct Searcher {
    inner: Arc<Inner>,
}

struct Inner {
    reader: IndexReader,
    fields: Fields,
    domains: Vec<String>,
    /// Normalised synonym groups.
    synonyms: Vec<Vec<String>>,
    /// Full pinyin or initials → normalised key terms.
    lexicon: BTreeMap<String, Vec<String>>,
    titles: Vec<SuggestEntry>,
}

struct SuggestEntry {
    id: String,
    kind: Kind,
    title: String,
    in_force: bool,
    key: String,
    pinyin: String,
    initials: String,
}

/// A tantivy directory that never writes: a content version is immutable once built, so
/// the reader's lock file (which guards against a concurrent writer's garbage collection)
/// is neither needed nor allowed.
#[derive(Clone, Debug)]
struct ReadOnlyDir(MmapDirectory);

struct NoLock;

impl tantivy::Directory for ReadOnlyDir {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.0.get_file_handle(path)
    }
    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        Err(DeleteError::IoError { io_error: Arc::new(read_only()), filepath: path.to_path_buf() })
    }
    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.0.exists(path)
    }
    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        Err(OpenWriteError::IoError {
            io_error: Arc::new(read_only()),
            filepath: path.to_path_buf(),
        })
    }
    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.0.atomic_read(path)
    }
    fn atomic_write(&self, _path: &Path, _data: &[u8]) -> std::io::Result<()> {
        Err(read_only())
    }
    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(NoLock)))
    }
    fn watch(&self, _cb: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(WatchHandle::empty())
    }
}

fn read_only() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the search index is read-only")
}

/// What one query term may match, from strongest to weakest.
#[derive(Debug, Default)]
struct TermPlan {
    /// The term itself and the key terms its pinyin spells, normalised.
    primary: Vec<String>,
    /// Synonym variants, normalised.
    synonyms: Vec<String>,
    /// Pinyin syllable sequences, for titles and key terms.
    pinyin: Vec<Vec<String>>,
    /// The letters as pinyin initials.
    initials: Option<Vec<String>>,
}

impl Searcher {
    /// Opens the index in `dir` (as written by [`super::build_index`]) read-only.
    pub fn open(dir: &Path) -> Result<Searcher, SearchError> {
        let meta_path = dir.join(META_FILE);
        let bytes = std::fs::read(&meta_path)
            .map_err(|e| SearchError::Open(dir.to_path_buf(), e.to_string()))?;
        let meta: Meta =
            serde_json::from_slice(&bytes).map_err(|e| SearchError::Meta(meta_path.clone(), e))?;
        if meta.format != index::FORMAT {
            return Err(SearchError::Format {
                dir: dir.to_path_buf(),
                found: meta.format,
                want: index::FORMAT,
            });
        }
        let mmap = MmapDirectory::open(dir)
            .map_err(|e| SearchError::Open(dir.to_path_buf(), e.to_string()))?;
        let idx = Index::open(ReadOnlyDir(mmap))?;
        index::register_tokenizers(&idx);
        let (_, fields) = index::schema();
        let reader = idx.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;

        let synonyms: Vec<Vec<String>> = meta
            .synonyms
            .iter()
            .map(|g| {
                let mut g: Vec<String> =
                    g.iter().map(|t| index::title_key(t)).filter(|t| !t.is_empty()).collect();
                g.dedup();
                g
            })
            .filter(|g| g.len() > 1)
            .collect();
        let mut lexicon: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for term in &meta.lexicon {
            let key = index::title_key(term);
            let (full, init) = pinyin_of(&key);
            if full == key {
                continue; // no Chinese in it
            }
            lexicon.entry(full).or_default().push(key.clone());
            if init.chars().count() >= 2 {
                lexicon.entry(init).or_default().push(key);
            }
        }
        for v in lexicon.values_mut() {
            v.sort();
            v.dedup();
        }
        let titles = meta
            .titles
            .into_iter()
            .map(|t| {
                let key = index::title_key(&t.title);
                let (pinyin, initials) = pinyin_of(&key);
                SuggestEntry {
                    id: t.id,
                    kind: t.kind,
                    title: t.title,
                    in_force: t.in_force,
                    key,
                    pinyin,
                    initials,
                }
            })
            .collect();
        Ok(Searcher {
            inner: Arc::new(Inner {
                reader,
                fields,
                domains: meta.domains,
                synonyms,
                lexicon,
                titles,
            }),
        })
    }

    /// How many items the index holds.
    pub fn len(&self) -> usize {
        self.inner.titles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.titles.is_empty()
    }

    fn plan_term(&self, term: &str) -> TermPlan {
        let mut plan = TermPlan { primary: vec![term.to_string()], ..TermPlan::default() };
        if term.bytes().all(|b| b.is_ascii_lowercase()) {
            // Whole pinyin or initials of a key term, or (from four letters on, as residents
            // stop typing once they think it is enough) the start of its pinyin.
            let spelled = self
                .inner
                .lexicon
                .range::<str, _>((Bound::Included(term), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(term));
            // A prefix is a guess, so it counts like a synonym: it never makes an exact title.
            for (k, terms) in spelled.take(MAX_LEXICON_PREFIX) {
                let list = if k == term {
                    &mut plan.primary
                } else if term.len() >= 4 {
                    &mut plan.synonyms
                } else {
                    continue;
                };
                for t in terms {
                    if !list.contains(t) {
                        list.push(t.clone());
                    }
                }
            }
            plan.pinyin = segment_pinyin(term, MAX_SEGMENTATIONS);
            if (2..=8).contains(&term.len()) {
                plan.initials = Some(term.chars().map(|c| c.to_string()).collect());
            }
        }
        if let Some(written) = chinese_ordinals(term) {
            plan.primary.push(written);
        }
        let bases: Vec<String> = plan.primary.iter().chain(&plan.synonyms).cloned().collect();
        for p in &bases {
            for group in &self.inner.synonyms {
                for g in group.iter().filter(|g| p.contains(String::as_str(g))) {
                    for other in group.iter().filter(|o| *o != g) {
                        let v = p.replace(String::as_str(g), other);
                        if !plan.primary.contains(&v)
                            && !plan.synonyms.contains(&v)
                            && plan.synonyms.len() < MAX_VARIANTS
                        {
                            plan.synonyms.push(v);
                        }
                    }
                }
            }
        }
        plan
    }

    /// The terms that find `s` (normalised, no spaces) in the title or the body: its
    /// unigram when it is one character, else its bigrams as a phrase.
    fn text_terms(&self, s: &str, title: bool) -> Vec<Term> {
        let f = &self.inner.fields;
        let (bi, uni) = if title { (f.title, f.title_uni) } else { (f.body, f.body_uni) };
        if s.chars().count() == 1 {
            return vec![Term::from_field_text(uni, s)];
        }
        bigrams(s).into_iter().map(|(t, _)| Term::from_field_text(bi, &t)).collect()
    }

    /// Items containing `s` (normalised, no spaces) in the title or the body.
    fn text_query(&self, s: &str, title: bool) -> Box<dyn Query> {
        let terms = self.text_terms(s, title);
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::WithFreqs)),
            _ => Box::new(PhraseQuery::new(terms)),
        }
    }

    fn seq_query(field: tantivy::schema::Field, seq: &[String]) -> Box<dyn Query> {
        let terms: Vec<Term> = seq.iter().map(|t| Term::from_field_text(field, t)).collect();
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::WithFreqs)),
            _ => Box::new(PhraseQuery::new(terms)),
        }
    }

    /// Upper bounds of the BM25 score the selecting query (the last of
    /// [`Self::tier_queries`]) gives a match: any match, and a match in the text tier or
    /// below. Scores add up over the parts of unions and intersections, and no part scores
    /// more than its BM25 weight with an infinite term frequency.
    fn score_bounds(
        &self,
        searcher: &tantivy::Searcher,
        plans: &[TermPlan],
    ) -> Result<(f32, f32), SearchError> {
        let f = &self.inner.fields;
        let bound = |terms: Vec<Term>| -> Result<f32, SearchError> {
            if terms.is_empty() {
                return Ok(0.0);
            }
            Ok(Bm25Weight::for_terms(searcher, &terms)?.max_score())
        };
        let seq_terms = |field, seq: &[String]| -> Vec<Term> {
            seq.iter().map(|t| Term::from_field_text(field, t)).collect()
        };
        let (mut all, mut body_only) = (0.0f32, 0.0f32);
        for p in plans {
            let mut title = 0.0;
            let mut body = 0.0;
            for s in p.primary.iter().chain(&p.synonyms) {
                title += bound(self.text_terms(s, true))?;
                body += bound(self.text_terms(s, false))?;
            }
            for seq in &p.pinyin {
                title += bound(seq_terms(f.pinyin, seq))?;
            }
            if let Some(seq) = &p.initials {
                body += bound(seq_terms(f.initials, seq))?;
            }
            all += title + body;
            body_only += body;
        }
        // A single term in the text tier or below matched none of its title parts; with
        // several terms, one term's title part may still have matched.
        let below_title = if plans.len() == 1 { body_only } else { all };
        // Rounding in the scorers may land a hair above the bound.
        let margin = |b: f32| b * 1.001 + 1e-3;
        Ok((margin(all), margin(below_title)))
    }

    /// The queries whose matches make the ranking tiers, and the one that selects results.
    fn tier_queries(&self, plans: &[TermPlan], exact: &[String]) -> [Box<dyn Query>; 5] {
        let f = &self.inner.fields;
        let mut tp = Vec::new();
        let mut ta = Vec::new();
        let mut ap = Vec::new();
        let mut all = Vec::new();
        for p in plans {
            let mut title_primary: Vec<Box<dyn Query>> =
                p.primary.iter().map(|s| self.text_query(s, true)).collect();
            title_primary.extend(p.pinyin.iter().map(|seq| Self::seq_query(f.pinyin, seq)));
            let title_syn: Vec<Box<dyn Query>> =
                p.synonyms.iter().map(|s| self.text_query(s, true)).collect();
            let body_primary: Vec<Box<dyn Query>> =
                p.primary.iter().map(|s| self.text_query(s, false)).collect();
            let body_syn: Vec<Box<dyn Query>> =
                p.synonyms.iter().map(|s| self.text_query(s, false)).collect();
            let initials: Vec<Box<dyn Query>> =
                p.initials.iter().map(|seq| Self::seq_query(f.initials, seq)).collect();

            let union = |parts: Vec<&Vec<Box<dyn Query>>>| -> Box<dyn Query> {
                Box::new(BooleanQuery::union(
                    parts.into_iter().flatten().map(|q| q.box_clone()).collect(),
                ))
            };
            tp.push(union(vec![&title_primary]));
            ta.push(union(vec![&title_primary, &title_syn]));
            ap.push(union(vec![&title_primary, &body_primary]));
            all.push(union(vec![&title_primary, &body_primary, &title_syn, &body_syn, &initials]));
        }
        let exact_q: Box<dyn Query> = Box::new(BooleanQuery::union(
            exact
                .iter()
                .map(|k| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.title_key, k),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>
                })
                .collect(),
        ));
        let and = |qs: Vec<Box<dyn Query>>| -> Box<dyn Query> {
            Box::new(BooleanQuery::intersection(qs))
        };
        [exact_q, and(tp), and(ta), and(ap), and(all)]
    }

    /// Runs a search. An empty query gives no hits.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults, SearchError> {
        let normalized: String = normalize(&req.query).chars().take(MAX_QUERY_CHARS).collect();
        let terms = query_terms(&normalized);
        if terms.is_empty() {
            return Ok(SearchResults::default());
        }
        let plans: Vec<TermPlan> = terms.iter().map(|t| self.plan_term(t)).collect();
        let whole: String = terms.concat();
        let mut exact = vec![whole];
        if plans.len() == 1 {
            exact.extend(plans[0].primary.iter().skip(1).cloned());
        }
        let [q_exact, q_tp, q_ta, q_ap, q_all] = self.tier_queries(&plans, &exact);

        let searcher = self.inner.reader.searcher();
        let w_all = q_all.weight(EnableScoring::enabled_from_searcher(&searcher))?;
        let no_score = || EnableScoring::disabled_from_searcher(&searcher);
        // Every match is counted (total and facets) through the unscored query, which reads
        // no term frequencies; only matches that can still enter the top `want` are scored.
        let w_count = q_all.weight(no_score())?;
        let (bound_all, bound_text) = self.score_bounds(&searcher, &plans)?;
        let w_tiers = [
            q_exact.weight(no_score())?,
            q_tp.weight(no_score())?,
            q_ta.weight(no_score())?,
            q_ap.weight(no_score())?,
        ];
        let tier_match = [Match::ExactTitle, Match::Title, Match::TitleSynonym, Match::Text];

        let flt = &req.filters;
        let want_kinds: Vec<u64> = flt.kinds.iter().map(|k| kind_code(*k)).collect();
        let want_validity: Vec<u64> = flt.validity.iter().map(|v| validity_code(*v)).collect();
        let want_domains: Vec<u64> = flt
            .domains
            .iter()
            .map(|d| self.inner.domains.binary_search(d).map_or(u64::MAX, |i| i as u64 + 1))
            .collect();
        let date_from = flt.from.map(date_code);
        let date_to = flt.to.map(date_code);
        let dated = date_from.is_some() || date_to.is_some();

        let mut kind_counts = [0usize; Kind::ALL.len()];
        let mut validity_counts = [0usize; Validity::ALL.len()];
        let mut domain_counts = vec![0usize; self.inner.domains.len() + 1];
        let mut year_counts: HashMap<i32, usize> = HashMap::new();
        let mut total = 0usize;
        let want = req.offset.saturating_add(req.limit);
        let mut heap: BinaryHeap<Reverse<RankKey>> = BinaryHeap::with_capacity(want + 1);

        let mut years = YearOf::default();
        let mut year_run: Option<(i32, usize)> = None;
        for (seg_ord, seg) in searcher.segment_readers().iter().enumerate() {
            let mut main = w_count.scorer(seg, 1.0)?;
            let mut scored = w_all.scorer(seg, 1.0)?;
            let mut tiers = Vec::with_capacity(w_tiers.len());
            for w in &w_tiers {
                tiers.push(w.scorer(seg, 1.0)?);
            }
            let ff = seg.fast_fields();
            let c_kind = ff.u64("kind")?;
            let c_validity = ff.u64("validity")?;
            let c_domain = ff.u64("domain")?;
            let c_date = ff.i64("date")?;
            // Indexes built before the `ord` field tie-break on the document address.
            let c_ord = ff.u64("ord").ok();
            let alive = seg.alive_bitset();
            // Matches are taken in batches so that the fast fields are read in bulk: a
            // one-character query can match every item.
            let mut docs: Vec<DocId> = Vec::with_capacity(BATCH);
            let (mut kinds, mut validities) = (vec![None; BATCH], vec![None; BATCH]);
            let (mut domains, mut dates) = (vec![None; BATCH], vec![None; BATCH]);
            let mut ords = vec![None; BATCH];
            let mut doc: DocId = main.doc();
            loop {
                docs.clear();
                while doc != TERMINATED && docs.len() < BATCH {
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        docs.push(doc);
                    }
                    doc = main.advance();
                }
                if docs.is_empty() {
                    break;
                }
                let n = docs.len();
                c_kind.first_vals(&docs, &mut kinds[..n]);
                c_validity.first_vals(&docs, &mut validities[..n]);
                c_domain.first_vals(&docs, &mut domains[..n]);
                c_date.first_vals(&docs, &mut dates[..n]);
                if let Some(c) = &c_ord {
                    c.first_vals(&docs, &mut ords[..n]);
                }
                for i in 0..n {
                    let (d, kind, validity) =
                        (docs[i], kinds[i].unwrap_or(0), validities[i].unwrap_or(0));
                    let (domain, date) = (domains[i].unwrap_or(0), dates[i]);
                    let ok_kind = want_kinds.is_empty() || want_kinds.contains(&kind);
                    let ok_validity = want_validity.is_empty() || want_validity.contains(&validity);
                    let ok_domain = want_domains.is_empty() || want_domains.contains(&domain);
                    let ok_date = !dated
                        || date.is_some_and(|d| {
                            date_from.is_none_or(|f| d >= f) && date_to.is_none_or(|t| d <= t)
                        });
                    let fails = [ok_kind, ok_validity, ok_domain, ok_date]
                        .iter()
                        .filter(|ok| !**ok)
                        .count();
                    // A dimension is counted when every other dimension's filter passes.
                    if fails > 1 {
                        continue;
                    }
                    if ok_validity && ok_domain && ok_date {
                        kind_counts[kind as usize % Kind::ALL.len()] += 1;
                    }
                    if ok_kind && ok_domain && ok_date {
                        validity_counts[validity as usize % Validity::ALL.len()] += 1;
                    }
                    if ok_kind && ok_validity && ok_date {
                        if let Some(c) = domain_counts.get_mut(domain as usize) {
                            *c += 1;
                        }
                    }
                    if ok_kind && ok_validity && ok_domain {
                        if let Some(y) = date.and_then(|c| years.year(c)) {
                            // Neighbouring items mostly share a year: count runs, hash once
                            // per run.
                            match &mut year_run {
                                Some((ry, n)) if *ry == y => *n += 1,
                                run => {
                                    if let Some((ry, n)) = run.replace((y, 1)) {
                                        *year_counts.entry(ry).or_default() += n;
                                    }
                                }
                            }
                        }
                    }
                    if fails > 0 {
                        continue;
                    }
                    total += 1;
                    if want == 0 {
                        continue;
                    }
                    // Once the heap is full, a match below its weakest hit in tier, then in
                    // force, then kind cannot enter it whatever its score: its score and its
                    // weaker tiers are not computed.
                    let floor = if heap.len() < want {
                        None
                    } else {
                        heap.peek().map(|Reverse(min)| (min.tier, min.in_force, min.kind))
                    };
                    let mut matched = Match::Related;
                    for (t, m) in tiers.iter_mut().zip(tier_match) {
                        if floor.is_some_and(|(tier, _, _)| tier_of(m) < tier) {
                            break;
                        }
                        if t.doc() < d {
                            t.seek(d);
                        }
                        if t.doc() == d {
                            matched = m;
                            break;
                        }
                    }
                    let tier = tier_of(matched);
                    let in_force = validity_from_code(validity).in_force();
                    let kind = kind_priority(kind_from_code(kind));
                    if floor.is_some_and(|f| (tier, in_force, kind) < f) {
                        continue;
                    }
                    // On a par with the weakest hit so far, the score bucket and then the
                    // date decide: a match whose best possible bucket is lower, or equal
                    // but older, cannot enter either.
                    if floor.is_some_and(|f| (tier, in_force, kind) == f) {
                        let bound =
                            if tier <= tier_of(Match::Text) { bound_text } else { bound_all };
                        let best = bound.round() as i64;
                        if let Some(Reverse(min)) = heap.peek() {
                            let date = date.unwrap_or(i64::MIN);
                            if best < min.bucket || (best == min.bucket && date < min.date) {
                                continue;
                            }
                        }
                    }
                    if scored.doc() < d {
                        scored.seek(d);
                    }
                    let score = if scored.doc() == d { scored.score() } else { 0.0 };
                    let key = RankKey {
                        tier,
                        matched,
                        in_force,
                        kind,
                        // Scores this close are "otherwise equal": the newer wins.
                        bucket: score.round() as i64,
                        date: date.unwrap_or(i64::MIN),
                        score: OrdF32(score),
                        ord: Reverse(ords[i].unwrap_or((seg_ord as u64) << 32 | u64::from(d))),
                        addr: (seg_ord as u32, d),
                    };
                    if heap.len() < want {
                        heap.push(Reverse(key));
                    } else if heap.peek().is_some_and(|Reverse(min)| key > *min) {
                        heap.pop();
                        heap.push(Reverse(key));
                    }
                }
            }
        }

        if let Some((y, n)) = year_run {
            *year_counts.entry(y).or_default() += n;
        }

        let mut ranked: Vec<RankKey> = heap.into_iter().map(|Reverse(k)| k).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        let mut needles: Vec<String> = Vec::new();
        for p in &plans {
            needles.extend(p.primary.iter().cloned());
            needles.extend(p.synonyms.iter().cloned());
        }
        let f = &self.inner.fields;
        let mut hits = Vec::new();
        for key in ranked.into_iter().skip(req.offset) {
            let (seg, doc) = key.addr;
            let stored: TantivyDocument = searcher.doc(DocAddress::new(seg, doc))?;
            let text = |field| {
                stored.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_string()
            };
            let (id, title, body) = (text(f.id), text(f.title), text(f.body));
            let seg_reader = searcher.segment_reader(seg);
            let ff = seg_reader.fast_fields();
            let kind = kind_from_code(ff.u64("kind")?.first(doc).unwrap_or(0));
            let validity = validity_from_code(ff.u64("validity")?.first(doc).unwrap_or(0));
            let domain = ff
                .u64("domain")?
                .first(doc)
                .and_then(|c| c.checked_sub(1))
                .and_then(|i| self.inner.domains.get(i as usize).cloned());
            let date = ff.i64("date")?.first(doc).and_then(date_from_code);
            hits.push(Hit {
                id,
                kind,
                title_fragments: fragments(&title, &needles, None),
                snippet: fragments(&body, &needles, Some(SNIPPET_CHARS)),
                title,
                score: key.score.0,
                matched: key.matched,
                validity,
                date,
                domain,
            });
        }

        let mut facets = Facets {
            kinds: Kind::ALL
                .iter()
                .zip(kind_counts)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (*k, n))
                .collect(),
            validity: Validity::ALL
                .iter()
                .zip(validity_counts)
                .filter(|(_, n)| *n > 0)
                .map(|(v, n)| (*v, n))
                .collect(),
            domains: domain_counts
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, n)| **n > 0)
                .filter_map(|(i, n)| self.inner.domains.get(i - 1).map(|d| (d.clone(), *n)))
                .collect(),
            years: year_counts.into_iter().collect(),
        };
        facets.kinds.sort_by_key(|(_, n)| Reverse(*n));
        facets.validity.sort_by_key(|(_, n)| Reverse(*n));
        facets.domains.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        facets.years.sort_by_key(|(y, _)| Reverse(*y));
        Ok(SearchResults { total, hits, facets })
    }

    /// Up to `n` titles for what the resident has typed so far: titles that start with it,
    /// then titles whose pinyin or initials start with it, then titles that contain it;
    /// documents in force first, shorter titles first.
    pub fn suggest(&self, prefix: &str, n: usize) -> Vec<Suggestion> {
        let p = index::title_key(prefix);
        if p.is_empty() || n == 0 {
            return Vec::new();
        }
        let ascii = p.bytes().all(|b| b.is_ascii_alphanumeric());
        let mut found: Vec<(u8, bool, usize, &SuggestEntry)> = Vec::new();
        for e in &self.inner.titles {
            let rank = if e.key.starts_with(&p) {
                0
            } else if ascii && (e.pinyin.starts_with(&p) || e.initials.starts_with(&p)) {
                1
            } else if e.key.contains(&p) {
                2
            } else {
                continue;
            };
            found.push((rank, !e.in_force, e.title.chars().count(), e));
        }
        found.sort_by(|a, b| (a.0, a.1, a.2, &a.3.title).cmp(&(b.0, b.1, b.2, &b.3.title)));
        let mut out: Vec<Suggestion> = Vec::new();
        for (_, _, _, e) in found {
            if out.iter().any(|s| s.title == e.title) {
                continue;
            }
            out.push(Suggestion { id: e.id.clone(), kind: e.kind, title: e.title.clone() });
            if out.len() == n {
                break;
            }
        }
        out
    }
}

/// The year of a day code, remembering the last year's range: neighbouring items share
/// dates, so facet counting rarely converts a date.
#[derive(Default)]
struct YearOf {
    range: Option<(i64, i64, i32)>,
}

impl YearOf {
    fn year(&mut self, code: i64) -> Option<i32> {
        if let Some((from, to, y)) = self.range {
            if (from..to).contains(&code) {
                return Some(y);
            }
        }
        let y = date_from_code(code)?.year();
        let from = NaiveDate::from_ymd_opt(y, 1, 1).map(date_code)?;
        let to = NaiveDate::from_ymd_opt(y + 1, 1, 1).map(date_code)?;
        self.range = Some((from, to, y));
        Some(y)
    }
}

/// Orders hits: match tier, then in force, then kind, then score bucket, then newer, then
/// exact score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RankKey {
    tier: u8,
    in_force: bool,
    kind: u8,
    bucket: i64,
    date: i64,
    score: OrdF32,
    /// Earlier in the content first: unique, so nothing after it orders.
    ord: Reverse<u64>,
    addr: (u32, DocId),
    /// Reported, not ordered by.
    matched: Match,
}

/// The admin's synonyms mean the same thing to residents, so a title that contains a
/// synonym ranks with titles that contain the query; kind and score decide between them.
fn tier_of(m: Match) -> u8 {
    match m {
        Match::ExactTitle => 3,
        Match::Title | Match::TitleSynonym => 2,
        Match::Text => 1,
        Match::Related => 0,
    }
}

/// Among equally good matches, what a resident at a hall most likely came for: how to get
/// something done, then the rules, answers, places and online services, then explanations
/// and news; the disclosure catalogue (an inventory for the admin and inspectors) last.
fn kind_priority(kind: Kind) -> u8 {
    match kind {
        Kind::Guide => 8,
        Kind::Policy => 7,
        Kind::Faq => 6,
        Kind::Office | Kind::QrLink => 5,
        Kind::Interpretation => 4,
        Kind::Notice => 3,
        Kind::Gazette => 2,
        Kind::Catalog => 1,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Where a content directory keeps its index: a content version has it in `index/`; an
/// index directory may also be given directly.
pub fn index_dir_of(content: &Path) -> PathBuf {
    let inner = content.join("index");
    if inner.join(META_FILE).exists() {
        inner
    } else {
        content.to_path_buf()
    }
}
