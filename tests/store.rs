//! The SQLite store of a content version: written once into a temp dir from a hand-made
//! `Merged`, then read through the read-only `Store` the way the UI reads it.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kiosk::content::{
    Body, Branding, Calendar, CatalogEntry, DeviceSettings, Function, Functions, Guide,
    Interpretation, Item, Kind, Merged, Notice, Policy, ScopeCode, ScopedItem, SynonymGroup,
    Validity,
};
use kiosk::store::{write_db, ListQuery, Store, StoreError};

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("test date")
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("test time")
}

fn scoped(
    scope: &str,
    id: &str,
    title: &str,
    domain: Option<&str>,
    links: &[&str],
    body: Body,
) -> ScopedItem {
    ScopedItem {
        scope: ScopeCode::parse(scope).expect("test scope"),
        item: Item {
            id: id.into(),
            title: title.into(),
            domain: domain.map(str::to_string),
            baseline: scope == "430100",
            links: links.iter().map(|s| s.to_string()).collect(),
            url: None,
            body,
        },
    }
}

fn policy(number: Option<&str>, issuer: &str, published: NaiveDate, validity: Validity) -> Body {
    Body::Policy(Policy {
        doc_number: number.map(str::to_string),
        issuer: issuer.into(),
        published: Some(published),
        validity,
        ..Policy::default()
    })
}

fn catalog(serial: &str, level1: &str, level2: &str) -> Body {
    Body::Catalog(CatalogEntry {
        serial: Some(serial.into()),
        level1: level1.into(),
        level2: level2.into(),
        content: "公开内容".into(),
        subject: "宁乡市人力资源和社会保障局".into(),
        ..CatalogEntry::default()
    })
}

fn notice(published: NaiveDate, from: DateTime<Utc>, until: DateTime<Utc>, pinned: bool) -> Body {
    Body::Notice(Notice { published, show_from: from, show_until: until, pinned, body: vec![] })
}

/// A small city + county chain: policies in several states, a 解读 of one, a guide that
/// links to a policy, catalogue rows in two domains, notices with windows.
fn demo() -> Merged {
    let mut items = vec![
        scoped(
            "430100",
            "p-old",
            "长沙市失业保险办法（2015年）",
            Some("社会保险"),
            &[],
            policy(
                Some("长政发〔2015〕3号"),
                "长沙市人民政府",
                day(2015, 3, 1),
                Validity::Repealed,
            ),
        ),
        scoped(
            "430100",
            "p-new",
            "长沙市失业保险办法",
            Some("社会保险"),
            &[],
            policy(Some("长政发〔2023〕9号"), "长沙市人民政府", day(2023, 6, 15), Validity::Valid),
        ),
        scoped(
            "430100",
            "p-mid",
            "关于做好就业工作的通知",
            Some("就业"),
            &[],
            policy(None, "长沙市人力资源和社会保障局", day(2021, 1, 8), Validity::Valid),
        ),
        scoped(
            "430182",
            "p-local",
            "宁乡市养老服务补贴办法",
            Some("养老服务"),
            &["g-unemp"],
            policy(Some("宁政发〔2024〕1号"), "宁乡市人民政府", day(2024, 2, 20), Validity::Valid),
        ),
        scoped(
            "430100",
            "i-new",
            "一图读懂《长沙市失业保险办法》",
            Some("社会保险"),
            &[],
            Body::Interpretation(Interpretation {
                policy: "p-new".into(),
                author: Some("长沙市人力资源和社会保障局".into()),
                published: Some(day(2023, 6, 20)),
                body: vec![],
            }),
        ),
        scoped(
            "430182",
            "g-unemp",
            "失业登记",
            Some("就业"),
            &["p-new", "missing-item"],
            Body::Guide(Guide {
                matter: "失业登记".into(),
                authority: "宁乡市人力资源和社会保障局".into(),
                time_limit: "即时办结".into(),
                ..Guide::default()
            }),
        ),
        scoped(
            "430182",
            "c-1",
            "失业保险金申领",
            Some("社会保险"),
            &[],
            catalog("2", "失业保险", "失业保险金申领"),
        ),
        scoped("430182", "c-2", "参保登记", Some("社会保险"), &[], catalog("1", "参保登记", "")),
        scoped(
            "430182",
            "c-3",
            "失业保险政策",
            Some("社会保险"),
            &[],
            catalog("3", "失业保险", "失业保险政策"),
        ),
        scoped(
            "430182",
            "c-4",
            "就业见习",
            Some("就业"),
            &[],
            catalog("10", "就业服务", "就业见习"),
        ),
        scoped(
            "430182",
            "c-5",
            "失业保险政策（乡镇）",
            Some("社会保险"),
            &[],
            catalog("4", "失业保险", "失业保险政策"),
        ),
        scoped(
            "430182",
            "n-pinned",
            "春节期间办公时间调整",
            None,
            &[],
            notice(day(2026, 2, 1), at(2026, 2, 1, 0), at(2026, 2, 20, 0), true),
        ),
        scoped(
            "430182",
            "n-new",
            "社保窗口系统升级公告",
            None,
            &[],
            notice(day(2026, 2, 10), at(2026, 2, 10, 0), at(2026, 3, 1, 0), false),
        ),
        scoped(
            "430182",
            "n-old",
            "元旦放假通知",
            None,
            &[],
            notice(day(2025, 12, 25), at(2025, 12, 25, 0), at(2026, 1, 4, 0), false),
        ),
    ];
    // Merged keeps items in id order; the store must not depend on any order.
    items.sort_by(|a, b| a.item.id.cmp(&b.item.id));
    Merged {
        items,
        branding: Branding {
            zone_name: "宁乡市政务公开专区".into(),
            hotline: "0731-87881234".into(),
            ..Branding::default()
        },
        functions: Functions {
            enabled: vec![Function::Policies, Function::Guides, Function::Request],
        },
        device: DeviceSettings { idle_seconds: 120, ..DeviceSettings::default() },
        calendar: Calendar {
            years: vec![2026],
            holidays: vec![day(2026, 10, 1)],
            workdays: vec![day(2026, 9, 27)],
        },
        synonyms: vec![SynonymGroup { terms: vec!["社保".into(), "社会保险".into()] }],
    }
}

/// Writes the demo database into a fresh temp dir and opens it read-only.
fn open_demo() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("content.db");
    write_db(&path, &demo()).expect("write_db");
    let store = Store::open(&path).expect("open");
    (dir, store)
}

fn ids(items: &[kiosk::store::ItemSummary]) -> Vec<&str> {
    items.iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn policies_list_in_force_first_then_newest() {
    let (_dir, store) = open_demo();
    let page = store.list(&ListQuery::new(Kind::Policy)).expect("list");
    assert_eq!(ids(&page.items), vec!["p-local", "p-new", "p-mid", "p-old"]);
    assert_eq!(page.total, 4);
    assert!(!page.has_more());
    let first = &page.items[0];
    assert_eq!(first.subtitle, "宁政发〔2024〕1号 · 宁乡市人民政府 · 2024年2月20日");
    assert_eq!(first.scope.as_str(), "430182");
    assert!(!first.baseline);
    assert_eq!(page.items[3].validity, Validity::Repealed);
}

#[test]
fn paging_keeps_the_total_and_the_order() {
    let (_dir, store) = open_demo();
    let p1 = store.list(&ListQuery::new(Kind::Policy).page(0, 3)).expect("page 1");
    let p2 = store.list(&ListQuery::new(Kind::Policy).page(3, 3)).expect("page 2");
    assert_eq!(ids(&p1.items), vec!["p-local", "p-new", "p-mid"]);
    assert!(p1.has_more());
    assert_eq!(ids(&p2.items), vec!["p-old"]);
    assert_eq!((p1.total, p2.total), (4, 4));
    assert!(!p2.has_more());
}

#[test]
fn filters_by_domain_and_validity() {
    let (_dir, store) = open_demo();
    let social = store.list(&ListQuery::new(Kind::Policy).domain("社会保险")).expect("list");
    assert_eq!(ids(&social.items), vec!["p-new", "p-old"]);
    let valid_social = store
        .list(&ListQuery::new(Kind::Policy).domain("社会保险").validity(Validity::Valid))
        .expect("list");
    assert_eq!(ids(&valid_social.items), vec!["p-new"]);
    assert_eq!(valid_social.total, 1);
    let none = store.list(&ListQuery::new(Kind::Policy).domain("扶贫")).expect("list");
    assert_eq!(none.total, 0);
    assert!(none.items.is_empty());
}

#[test]
fn an_item_shows_what_it_links_to_and_what_links_to_it() {
    let (_dir, store) = open_demo();
    let detail = store.get("p-new").expect("get").expect("p-new exists");
    assert_eq!(detail.item.title, "长沙市失业保险办法");
    assert!(detail.links_out.is_empty());
    // The guide links to it by `links`, the 解读 by its `policy` field.
    let incoming: Vec<(&str, Kind)> =
        detail.links_in.iter().map(|s| (s.id.as_str(), s.kind)).collect();
    assert_eq!(incoming, vec![("i-new", Kind::Interpretation), ("g-unemp", Kind::Guide)]);
    assert_eq!(detail.links_in[0].title, "一图读懂《长沙市失业保险办法》");

    let guide = store.get("g-unemp").expect("get").expect("g-unemp exists");
    // The dangling link to "missing-item" is not shown; the incoming one from p-local is.
    assert_eq!(ids(&guide.links_out), vec!["p-new"]);
    assert_eq!(ids(&guide.links_in), vec!["p-local"]);
    assert_eq!(guide.related().len(), 2);
    assert_eq!(guide.summary.subtitle, "实施主体：宁乡市人力资源和社会保障局 · 办理时限：即时办结");

    let interp = store.get("i-new").expect("get").expect("i-new exists");
    assert_eq!(ids(&interp.links_out), vec!["p-new"]);
    assert_eq!(interp.summary.subtitle, "解读《长沙市失业保险办法》 · 2023年6月20日");

    assert!(store.get("no-such-item").expect("get").is_none());
}

#[test]
fn counts_per_domain_follow_the_standard_order() {
    let (_dir, store) = open_demo();
    let counts: Vec<(String, u64)> = store
        .domain_counts(Kind::Policy)
        .expect("counts")
        .into_iter()
        .map(|d| (d.domain, d.count))
        .collect();
    // 养老服务 precedes 就业 precedes 社会保险 in the 国办发〔2019〕54号 list.
    assert_eq!(counts, vec![("养老服务".into(), 1), ("就业".into(), 1), ("社会保险".into(), 2)]);

    let notices = store.domain_counts(Kind::Notice).expect("counts");
    assert_eq!(notices.len(), 1);
    assert_eq!(
        (notices[0].domain.as_str(), notices[0].label.as_str(), notices[0].count),
        ("", "其他", 3)
    );
    // The "" domain is a usable filter value.
    assert_eq!(store.list(&ListQuery::new(Kind::Notice).domain("")).expect("list").total, 3);

    let validity = store.validity_counts(Kind::Policy).expect("validity counts");
    assert_eq!(validity, vec![(Validity::Valid, 3), (Validity::Repealed, 1)]);
    let kinds = store.kind_counts().expect("kind counts");
    assert!(kinds.contains(&(Kind::Catalog, 5)));
    assert!(!kinds.iter().any(|(k, _)| *k == Kind::Faq));
}

#[test]
fn catalogue_tree_reads_in_official_order_with_counts() {
    let (_dir, store) = open_demo();
    let tree = store.catalog_tree().expect("tree");
    let domains: Vec<(&str, u64)> = tree.iter().map(|d| (d.domain.as_str(), d.count)).collect();
    assert_eq!(domains, vec![("就业", 1), ("社会保险", 4)]);
    let social = &tree[1];
    let level1: Vec<(&str, u64)> =
        social.level1.iter().map(|l| (l.name.as_str(), l.count)).collect();
    // 序号 1 (参保登记) before 序号 2–4 (失业保险), whatever the ids or titles say.
    assert_eq!(level1, vec![("参保登记", 1), ("失业保险", 3)]);
    assert!(social.level1[0].level2.is_empty(), "a row without 二级事项 adds no child");
    let level2: Vec<(&str, u64)> =
        social.level1[1].level2.iter().map(|l| (l.name.as_str(), l.count)).collect();
    assert_eq!(level2, vec![("失业保险金申领", 1), ("失业保险政策", 2)]);

    let rows = store
        .list(
            &ListQuery::new(Kind::Catalog)
                .domain("社会保险")
                .level1("失业保险")
                .level2("失业保险政策"),
        )
        .expect("list");
    assert_eq!(ids(&rows.items), vec!["c-3", "c-5"]);
    assert_eq!(
        rows.items[0].subtitle,
        "社会保险 · 失业保险 · 公开主体：宁乡市人力资源和社会保障局"
    );
}

#[test]
fn notices_show_only_inside_their_window_pinned_first() {
    let (_dir, store) = open_demo();
    let showing = store.notices_showing(at(2026, 2, 12, 9)).expect("notices");
    assert_eq!(ids(&showing), vec!["n-pinned", "n-new"]);
    assert_eq!(showing[0].subtitle, "置顶 · 发布日期：2026年2月1日");
    // The window's end is exclusive: at the moment it ends the pinned notice is gone.
    assert_eq!(ids(&store.notices_showing(at(2026, 2, 20, 0)).expect("notices")), vec!["n-new"]);
    assert!(store.notices_showing(at(2026, 6, 1, 0)).expect("notices").is_empty());
    // The 通知公告 list still holds them all, newest first.
    assert_eq!(
        ids(&store.list(&ListQuery::new(Kind::Notice)).expect("list").items),
        vec!["n-new", "n-pinned", "n-old"]
    );
}

#[test]
fn settings_come_back_as_written() {
    let (_dir, store) = open_demo();
    let merged = demo();
    assert_eq!(store.branding().expect("branding"), merged.branding);
    assert_eq!(store.functions().expect("functions"), merged.functions);
    assert_eq!(store.device().expect("device"), merged.device);
    assert_eq!(store.calendar().expect("calendar"), merged.calendar);
    assert_eq!(store.synonyms().expect("synonyms"), merged.synonyms);
}

#[test]
fn every_item_round_trips_through_the_database() {
    let (_dir, store) = open_demo();
    for scoped in demo().items {
        let detail = store.get(&scoped.item.id).expect("get").expect("stored");
        assert_eq!(detail.item, scoped.item);
        assert_eq!(detail.summary.scope, scoped.scope);
    }
}

#[test]
fn the_database_is_written_once_and_leaves_no_side_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("content.db");
    write_db(&path, &demo()).expect("first write");
    assert!(matches!(write_db(&path, &demo()), Err(StoreError::Exists { .. })));
    {
        let store = Store::open(&path).expect("open");
        assert_eq!(store.list(&ListQuery::new(Kind::Guide)).expect("list").total, 1);
        let second = Store::open(&path).expect("a second reader");
        assert_eq!(second.list(&ListQuery::new(Kind::Guide)).expect("list").total, 1);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["content.db"],
        "an immutable version directory gains no -wal/-shm/-journal files"
    );
}

#[test]
fn a_missing_or_foreign_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(Store::open(&dir.path().join("absent.db")).is_err());
    assert!(!dir.path().join("absent.db").exists(), "opening must not create the file");
    // An SQLite file from elsewhere has schema version 0.
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .expect("foreign db");
    assert!(matches!(Store::open(&foreign), Err(StoreError::SchemaMismatch { found: 0, .. })));
}

#[test]
fn the_in_memory_store_answers_like_the_file() {
    let store = Store::in_memory(&demo()).expect("in memory");
    let page = store.list(&ListQuery::new(Kind::Policy)).expect("list");
    assert_eq!(ids(&page.items), vec!["p-local", "p-new", "p-mid", "p-old"]);
    let hits = store.summaries(&["c-2", "nope", "p-mid"]).expect("summaries");
    assert_eq!(ids(&hits), vec!["c-2", "p-mid"]);
}

/// Figures for 100k policies: write time, file size, and the list/get queries a screen
/// makes. Prints, asserts only that the answers are complete.
#[test]
#[ignore = "benchmark: cargo test --release --test tests store::figures -- --ignored --nocapture"]
fn figures_at_100k_items() {
    use std::time::Instant;
    let domains = ["社会保险", "就业", "养老服务", "卫生健康", "义务教育"];
    let items = (0..100_000u32)
        .map(|i| {
            let validity = if i % 7 == 0 { Validity::Repealed } else { Validity::Valid };
            let published = day(2000 + (i % 26) as i32, 1 + i % 12, 1 + i % 28);
            scoped(
                "430182",
                &format!("p-{i:06}"),
                &format!("关于第{i}号事项的通知"),
                Some(domains[(i % 5) as usize]),
                &[],
                policy(
                    Some(&format!("宁政发〔2024〕{i}号")),
                    "宁乡市人民政府",
                    published,
                    validity,
                ),
            )
        })
        .collect();
    let merged = Merged { items, ..Merged::default() };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("content.db");
    let t = Instant::now();
    write_db(&path, &merged).expect("write");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("write_db 100k policies: {:?}, {} MB", t.elapsed(), size / 1_000_000);
    let store = Store::open(&path).expect("open");
    let time = |label: &str, f: &mut dyn FnMut() -> u64| {
        let t = Instant::now();
        let n = f();
        println!("{label}: {:?} ({n})", t.elapsed());
        n
    };
    let total = time("first page, all policies", &mut || {
        store.list(&ListQuery::new(Kind::Policy)).expect("list").total
    });
    assert_eq!(total, 100_000);
    time("first page, one domain, in force", &mut || {
        store
            .list(&ListQuery::new(Kind::Policy).domain("就业").validity(Validity::Valid))
            .expect("list")
            .total
    });
    time("page at offset 50,000", &mut || {
        store.list(&ListQuery::new(Kind::Policy).page(50_000, 20)).expect("list").items.len() as u64
    });
    time("get with links", &mut || {
        store.get("p-050000").expect("get").map(|d| d.links_in.len() as u64).unwrap_or(0)
    });
    time("domain counts", &mut || store.domain_counts(Kind::Policy).expect("counts").len() as u64);
}
