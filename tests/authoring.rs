//! content-sync authoring: a source folder (Markdown, Word, Excel/CSV, TOML) → content, every
//! bad input reported with its file and line or row, build → verify → inspect → diff, and
//! the committed demo bundle matching what its source builds to.
//!
//! Word and Excel fixtures are written at test time (a minimal .docx zip, an .xlsx from
//! rust_xlsxwriter), never checked in.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use content_sync::authoring::{
    self, diff_report, inspect_report, load_source, verify_bundle, At, SourceErrorKind,
    SourceErrors,
};
use kiosk::content::{Block, Body, Kind, ScopeContent};

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create dirs");
    std::fs::write(path, bytes).expect("write fixture");
}

/// A source folder with a bundle.toml only.
fn source(scope: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "bundle.toml",
        format!("scope = \"{scope}\"\nversion = 3\ncreated = 2026-11-01T00:00:00Z\nexpires = 2036-11-01T00:00:00Z\nbaseline_catalog = true\n"),
    );
    dir
}

fn load(dir: &Path) -> (ScopeContent, Vec<(String, Vec<u8>)>) {
    match load_source(dir) {
        Ok(v) => v,
        Err(e) => panic!("the source should load:\n{e}"),
    }
}

fn errors(dir: &Path) -> SourceErrors {
    match load_source(dir) {
        Ok(_) => panic!("a bad source was accepted"),
        Err(e) => e,
    }
}

/// A minimal Word document: `paras` are (style id, text); a table follows them.
fn docx(paras: &[(&str, &str)], table: &[&[&str]]) -> Vec<u8> {
    let mut body = String::new();
    for (style, text) in paras {
        let ppr = if style.is_empty() {
            String::new()
        } else {
            format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>")
        };
        body.push_str(&format!("<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"));
    }
    if !table.is_empty() {
        body.push_str("<w:tbl>");
        for row in table {
            body.push_str("<w:tr>");
            for cell in *row {
                body.push_str(&format!("<w:tc><w:p><w:r><w:t>{cell}</w:t></w:r></w:p></w:tc>"));
            }
            body.push_str("</w:tr>");
        }
        body.push_str("</w:tbl>");
    }
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{body}</w:body></w:document>"
    );
    let styles = "<?xml version=\"1.0\"?><w:styles xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:style w:styleId=\"1\"><w:name w:val=\"heading 1\"/></w:style><w:style w:styleId=\"2\"><w:name w:val=\"heading 2\"/></w:style></w:styles>";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in [("word/document.xml", document.as_str()), ("word/styles.xml", styles)] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish").into_inner()
}

const HEADER: [&str; 11] = [
    "序号",
    "一级事项",
    "二级事项",
    "公开内容（要素）",
    "公开依据",
    "公开时限",
    "公开主体",
    "公开渠道和载体",
    "公开对象",
    "公开方式",
    "公开层级",
];

/// An .xlsx with a title row, the header in row 2, `rows` from row 3, on sheet `sheet`.
fn xlsx(sheet: &str, header: &[&str], rows: &[&[&str]]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet).expect("sheet name");
    ws.write_string(0, 0, "基层政务公开标准目录").expect("cell");
    for (c, h) in header.iter().enumerate() {
        ws.write_string(1, c as u16, *h).expect("cell");
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(2 + r as u32, c as u16, *v).expect("cell");
            }
        }
    }
    book.save_to_buffer().expect("xlsx")
}

fn only_error(e: &SourceErrors) -> &authoring::SourceError {
    assert_eq!(e.len(), 1, "expected one error, got:\n{e}");
    &e.0[0]
}

const POLICY_MD: &str = "---\nid: cs-zwb-2020-8\nkind: 政策文件\ntitle: 长沙市全面推进基层政务公开标准化规范化工作实施方案\n文号: 长政务办〔2020〕8号\n发文机关: 长沙市政务公开政务服务工作领导小组办公室\n成文日期: 2020-05-25\n效力状态: 有效\n主题分类: 政务公开\ndomain: 政务公开\nattachments: [申请表.docx]\n---\n\n## 一、工作目标\n\n通过三年时间，全面搭建起\n全市统一的基层政务公开标准体系。\n";

#[test]
fn a_good_source_loads_every_kind() {
    let dir = source("430182");
    let d = dir.path();
    write(d, "documents/policy.md", POLICY_MD);
    write(d, "files/申请表.docx", b"form bytes");
    write(d, "documents/jd.md", "+++\nid = \"jd-1\"\nkind = \"政策解读\"\ntitle = \"一图读懂\"\npolicy = \"cs-zwb-2020-8\"\nlinks = [\"faq-1\"]\n+++\n正文\n");
    write(
        d,
        "documents/word.docx",
        docx(
            &[("1", "第一章 总则"), ("", "第一条 为了规范。")],
            &[&["材料", "份数"], &["身份证", "1"]],
        ),
    );
    write(d, "documents/word.toml", "id = \"nx-word-1\"\nkind = \"policy\"\ntitle = \"宁乡市某办法\"\nissuer = \"宁乡市人民政府\"\npublished = 2024-03-01\n");
    write(
        d,
        "catalog/目录.xlsx",
        xlsx(
            "社会救助",
            &HEADER,
            &[
                &[
                    "1",
                    "最低生活保障",
                    "政策文件",
                    "政策法规文件",
                    "《社会救助暂行办法》",
                    "20个工作日",
                    "民政局",
                    "政府网站、公开栏",
                    "全社会",
                    "主动",
                    "县级",
                ],
                &[
                    "2",
                    "",
                    "审核结果",
                    "救助对象名单",
                    "《社会救助暂行办法》",
                    "20个工作日",
                    "民政局",
                    "公开栏",
                    "特定群体",
                    "主动",
                    "乡级",
                ],
            ],
        ),
    );
    write(
        d,
        "catalog/户籍管理.csv",
        "\u{feff}序号,一级事项,二级事项,公开内容,公开依据,公开时限,公开主体,公开渠道/载体,公开对象,公开方式,公开层级\n1,户口登记,出生登记,办理材料,《户口登记条例》,20个工作日,公安局,政务服务中心,全社会,主动,县级\n",
    );
    write(d, "guides/低保.toml", "id = \"g-dibao\"\ntitle = \"最低生活保障审核确认\"\nauthority = \"宁乡市民政局\"\nmaterials = [\"身份证\", { name = \"户口簿\", note = \"原件\" }]\nsteps = [\"申请\", \"审核\"]\nlinks = [\"cs-zwb-2020-8\"]\n");
    write(
        d,
        "faqs.toml",
        "[[faq]]\nid = \"faq-1\"\nquestion = \"低保多久批下来？\"\nanswer = \"30个工作日内。\"\n",
    );
    write(d, "notices.toml", "[[notice]]\nid = \"n-1\"\ntitle = \"停电通知\"\nshow_from = 2026-11-20\nshow_until = 2026-12-01\nbody = \"# 通知\\n\\n周六停电。\"\n");
    write(d, "qr.toml", "[[qr]]\nid = \"qr-12345\"\ntitle = \"12345热线\"\ntarget = \"https://12345.changsha.gov.cn\"\n");
    write(
        d,
        "offices.toml",
        "[[office]]\nid = \"o-1\"\ntitle = \"宁乡市政务服务中心\"\naddress = \"宁乡市\"\n",
    );
    write(d, "branding.toml", "zone_name = \"宁乡市政务公开专区\"\nprimary_color = \"#b71c1c\"\n");
    write(d, "functions.toml", "enabled = [\"policies\", \"办事指南\"]\n");
    write(d, "calendar.toml", "years = [2024]\n[[holiday]]\nname = \"国庆节\"\noff = [\"2024-10-01..2024-10-07\"]\nwork = [2024-09-29, 2024-10-12]\n");
    write(d, "synonyms.toml", "groups = [[\"社保\", \"社会保险\"]]\n");

    let (content, files) = load(d);
    assert_eq!(content.scope.as_str(), "430182");
    let count = |k: Kind| content.items.iter().filter(|i| i.kind() == k).count();
    assert_eq!(
        [
            count(Kind::Policy),
            count(Kind::Interpretation),
            count(Kind::Catalog),
            count(Kind::Guide),
            count(Kind::Faq),
            count(Kind::Notice),
            count(Kind::QrLink),
            count(Kind::Office)
        ],
        [2, 1, 3, 1, 1, 1, 1, 1]
    );
    let item = |id: &str| {
        content.items.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no item {id}"))
    };
    let Body::Policy(p) = &item("cs-zwb-2020-8").body else { panic!("not a policy") };
    assert_eq!(p.doc_number.as_deref(), Some("长政务办〔2020〕8号"));
    assert_eq!(p.written.map(|d| d.to_string()).as_deref(), Some("2020-05-25"));
    assert_eq!(
        p.body[1],
        Block::Paragraph {
            text: "通过三年时间，全面搭建起全市统一的基层政务公开标准体系。".into()
        }
    );
    assert_eq!(p.attachments[0].path, "files/申请表.docx");
    assert_eq!(files, vec![("files/申请表.docx".to_string(), b"form bytes".to_vec())]);
    let Body::Policy(w) = &item("nx-word-1").body else { panic!("not a policy") };
    assert_eq!(w.body[0], Block::Heading { level: 1, text: "第一章 总则".into() });
    assert_eq!(
        w.body[2],
        Block::Table {
            rows: vec![vec!["材料".into(), "份数".into()], vec!["身份证".into(), "1".into()]]
        }
    );
    // The xlsx row with an empty 一级事项 continues the one above; the 领域 is the sheet name.
    let rows: Vec<_> = content
        .items
        .iter()
        .filter(|i| i.kind() == Kind::Catalog && i.domain.as_deref() == Some("社会救助"))
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.baseline));
    let Body::Catalog(c) = &rows[1].body else { panic!("not a catalogue row") };
    assert_eq!((c.level1.as_str(), c.level2.as_str()), ("最低生活保障", "审核结果"));
    let Body::Catalog(csv) = &item("cat-430182-17-1").body else { panic!("not a catalogue row") };
    assert_eq!(csv.content, "办理材料");
    let cal = content.calendar.expect("calendar");
    assert_eq!(cal.holidays.len(), 7);
    assert_eq!(cal.workdays.len(), 2);
    assert_eq!(content.functions.expect("functions").enabled.len(), 2);
    assert_eq!(content.synonyms.len(), 1);
    let Body::Notice(n) = &item("n-1").body else { panic!("not a notice") };
    assert_eq!(
        n.show_from.to_rfc3339(),
        "2026-11-19T16:00:00+00:00",
        "dates without a zone are China time"
    );
}

#[test]
fn malformed_front_matter_names_the_file_and_line() {
    let dir = source("430182");
    write(
        dir.path(),
        "documents/bad.md",
        "---\nid: a\ntitle: \"unclosed\nkind: policy\n---\ntext\n",
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert_eq!(err.file, PathBuf::from("documents/bad.md"));
    assert!(matches!(err.kind, SourceErrorKind::FrontMatter(_)), "{err}");
    assert!(matches!(err.at, Some(At::Line(3..=5))), "{err}");

    let dir = source("430182");
    write(dir.path(), "documents/none.md", "# 标题\n正文\n");
    let e = errors(dir.path());
    assert!(e.to_string().contains("documents/none.md, line 1: malformed front matter"), "{e}");

    let dir = source("430182");
    write(
        dir.path(),
        "documents/typo.md",
        "---\nid: a\nkind: 政策文件\ntitle: t\nissuer: x\nvaliditty: 有效\n---\n",
    );
    let e = errors(dir.path());
    assert_eq!(only_error(&e).at, Some(At::Line(6)), "{e}");
    assert!(e.to_string().contains("validitty"), "{e}");
}

#[test]
fn a_docx_that_is_not_a_zip_is_refused() {
    let dir = source("430182");
    write(dir.path(), "documents/scan.docx", "this is a text file renamed to .docx");
    write(
        dir.path(),
        "documents/scan.toml",
        "id = \"x\"\nkind = \"policy\"\ntitle = \"t\"\nissuer = \"i\"\n",
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert_eq!(err.file, PathBuf::from("documents/scan.docx"));
    assert!(matches!(&err.kind, SourceErrorKind::NotDocx(why) if why.contains("zip")), "{err}");
    assert!(err.to_string().contains("save it as"), "the message says what to do: {err}");
}

#[test]
fn an_xlsx_without_a_required_column_names_it() {
    let dir = source("430182");
    let header: Vec<&str> = HEADER.iter().copied().filter(|h| *h != "公开时限").collect();
    write(
        dir.path(),
        "catalog/就业.xlsx",
        xlsx(
            "就业",
            &header,
            &[&["1", "就业服务", "政策", "内容", "依据", "主体", "网站", "全社会", "主动", "县级"]],
        ),
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert_eq!(err.file, PathBuf::from("catalog/就业.xlsx"));
    assert!(
        matches!(&err.kind, SourceErrorKind::MissingColumn { column, .. } if column == "公开时限"),
        "{err}"
    );
    assert_eq!(err.at, Some(At::Row { sheet: Some("就业".into()), row: 2 }));
}

#[test]
fn an_empty_content_cell_gives_the_row_excel_shows() {
    let dir = source("430182");
    write(
        dir.path(),
        "catalog/就业.xlsx",
        xlsx(
            "就业",
            &HEADER,
            &[
                &[
                    "1",
                    "就业服务",
                    "政策",
                    "内容",
                    "依据",
                    "20个工作日",
                    "人社局",
                    "网站",
                    "全社会",
                    "主动",
                    "县级",
                ],
                &[
                    "2",
                    "就业服务",
                    "补贴",
                    "",
                    "依据",
                    "20个工作日",
                    "人社局",
                    "网站",
                    "全社会",
                    "主动",
                    "县级",
                ],
            ],
        ),
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert_eq!(err.kind, SourceErrorKind::EmptyContent);
    // Title row 1, header row 2, first data row 3: the empty one is row 4.
    assert_eq!(err.at, Some(At::Row { sheet: Some("就业".into()), row: 4 }));
    assert!(err.to_string().contains("sheet “就业”, row 4"), "{err}");
}

#[test]
fn duplicate_ids_name_both_places() {
    let dir = source("430182");
    write(dir.path(), "faqs.toml", "[[faq]]\nid = \"same\"\nquestion = \"q\"\nanswer = \"a\"\n");
    write(
        dir.path(),
        "qr.toml",
        "# 二维码\n\n[[qr]]\nid = \"same\"\ntitle = \"t\"\ntarget = \"https://example.org\"\n",
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert!(matches!(&err.kind, SourceErrorKind::DuplicateId { id, .. } if id == "same"), "{err}");
    let text = err.to_string();
    assert!(text.contains("faqs.toml, line 1") && text.contains("qr.toml, line 3"), "{text}");
}

#[test]
fn an_unknown_domain_lists_the_allowed_ones() {
    let dir = source("430182");
    write(
        dir.path(),
        "faqs.toml",
        "[[faq]]\nid = \"f\"\nquestion = \"q\"\nanswer = \"a\"\ndomain = \"社会保障\"\n",
    );
    let e = errors(dir.path());
    let err = only_error(&e);
    assert!(
        matches!(&err.kind, SourceErrorKind::UnknownDomain { domain } if domain == "社会保障"),
        "{err}"
    );
    assert!(
        err.to_string().contains("社会保险、") && err.to_string().contains("社会救助"),
        "{err}"
    );

    // In a catalogue, a 领域 column value is checked row by row.
    let dir = source("430182");
    let mut header = vec!["领域"];
    header.extend(HEADER);
    write(
        dir.path(),
        "catalog/目录.xlsx",
        xlsx(
            "Sheet1",
            &header,
            &[&[
                "民生",
                "1",
                "事项",
                "二级",
                "内容",
                "依据",
                "时限",
                "主体",
                "网站",
                "全社会",
                "主动",
                "县级",
            ]],
        ),
    );
    let e = errors(dir.path());
    assert_eq!(only_error(&e).at, Some(At::Row { sheet: Some("Sheet1".into()), row: 3 }), "{e}");
}

#[test]
fn a_link_to_a_missing_item_is_refused() {
    let dir = source("430182");
    write(dir.path(), "faqs.toml", "[[faq]]\nid = \"f\"\nquestion = \"q\"\nanswer = \"a\"\n\n[[faq]]\nid = \"g\"\nquestion = \"q\"\nanswer = \"a\"\nlinks = [\"f\", \"no-such-item\"]\n");
    let e = errors(dir.path());
    let err = only_error(&e);
    assert!(
        matches!(&err.kind, SourceErrorKind::BrokenLink { target, .. } if target == "no-such-item"),
        "{err}"
    );
    assert_eq!(err.at, Some(At::Line(6)));
}

#[test]
fn links_may_point_into_a_wider_scope_named_in_link_sources() {
    let parent = tempfile::tempdir().expect("temp dir");
    let city = parent.path().join("430100");
    let county = parent.path().join("430182");
    write(&city, "bundle.toml", "scope = \"430100\"\n");
    write(&city, "faqs.toml", "[[faq]]\nid = \"city-faq\"\nquestion = \"q\"\nanswer = \"a\"\n");
    write(&county, "bundle.toml", "scope = \"430182\"\nlink_sources = [\"../430100\"]\n");
    write(
        &county,
        "faqs.toml",
        "[[faq]]\nid = \"f\"\nquestion = \"q\"\nanswer = \"a\"\nlinks = [\"city-faq\"]\n",
    );
    let (content, _) = load(&county);
    assert_eq!(
        content.items.len(),
        1,
        "the city's items are link targets, not content of the county"
    );
}

#[test]
fn file_names_that_escape_the_folder_are_refused() {
    let dir = source("430182");
    write(dir.path(), "documents/p.md", POLICY_MD.replace("[申请表.docx]", "[../../etc/passwd]"));
    let e = errors(dir.path());
    let err = only_error(&e);
    assert_eq!(err.file, PathBuf::from("documents/p.md"));
    assert!(
        matches!(&err.kind, SourceErrorKind::EscapesFolder { path } if path.contains("..")),
        "{err}"
    );

    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().expect("temp dir");
        write(outside.path(), "secret.txt", "not for kiosks");
        let dir = source("430182");
        write(dir.path(), "documents/p.md", POLICY_MD);
        std::fs::create_dir_all(dir.path().join("files")).expect("files dir");
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("files/申请表.docx"),
        )
        .expect("symlink");
        let e = errors(dir.path());
        let err = only_error(&e);
        assert!(matches!(err.kind, SourceErrorKind::EscapesFolder { .. }), "{err}");
        assert_eq!(err.file, PathBuf::from("documents/p.md"), "the error points at the reference");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = source("430182");
    write(dir.path(), "documents/bad.md", "no front matter\n");
    write(dir.path(), "documents/scan.docx", "not a zip");
    write(dir.path(), "faqs.toml", "[[faq]]\nid = \"f\"\nquestion = \"q\"\n");
    write(dir.path(), "faq.toml", "");
    write(dir.path(), "calendar.toml", "years = [2024]\nworkdays = [2024-10-08]\n");
    let e = errors(dir.path());
    assert_eq!(e.len(), 5, "{e}");
    let text = e.to_string();
    for needle in [
        "documents/bad.md",
        "documents/scan.docx",
        "missing field `answer`",
        "faq.toml: not a part",
        "2024-10-08 is a Tue",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn a_gb18030_csv_and_header_variants_are_read() {
    let dir = source("430182");
    let text = "序号,一级事项,二级事项,公开内容（要素）,公开依据,公开时限,公开主体,公开渠道及载体,公开对象,公开方式,公开层级\n1,城乡居民养老保险,参保登记,参保条件,《社会保险法》,20个工作日,人社局,政府网站,全社会,主动,县级\n";
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    write(dir.path(), "catalog/社会保险.csv", bytes);
    let (content, _) = load(dir.path());
    assert_eq!(content.items.len(), 1);
    assert_eq!(content.items[0].domain.as_deref(), Some("社会保险"));
    assert_eq!(content.items[0].title, "参保登记");
}

fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("city.key");
    authoring::keygen(authoring::KeygenArgs {
        out: key.clone(),
        root: None,
        expires: Some("2036-12-31".into()),
        force: false,
    })
    .expect("keygen");
    key
}

#[test]
fn build_verify_inspect_and_diff() {
    let work = tempfile::tempdir().expect("temp dir");
    let key = keygen(work.path());
    assert!(work.path().join("city.key.pub").exists() && work.path().join("root.json").exists());
    let src = source("430182");
    write(src.path(), "documents/policy.md", POLICY_MD);
    write(src.path(), "files/申请表.docx", b"form bytes");
    write(
        src.path(),
        "faqs.toml",
        "[[faq]]\nid = \"faq-1\"\nquestion = \"低保多久批下来？\"\nanswer = \"30个工作日内。\"\n",
    );
    let old = work.path().join("old");
    authoring::build(authoring::BuildArgs {
        source: src.path().into(),
        out: old.clone(),
        key: vec![key.clone()],
        version: None,
    })
    .expect("build");
    let manifest =
        verify_bundle(&old, &work.path().join("root.json")).expect("a fresh bundle verifies");
    assert_eq!((manifest.scope.as_str(), manifest.version), ("430182", 3));

    let report = inspect_report(&old).expect("inspect");
    for needle in [
        "scope     430182",
        "version   3",
        "2036-11-01",
        "政策文件 1",
        "政务公开 1",
        "[政策问答] faq-1 低保多久批下来？",
    ] {
        assert!(report.contains(needle), "{needle} missing from:\n{report}");
    }

    write(src.path(), "faqs.toml", "[[faq]]\nid = \"faq-1\"\nquestion = \"低保多久批下来？\"\nanswer = \"自受理之日起30个工作日内。\"\n\n[[faq]]\nid = \"faq-2\"\nquestion = \"新问题\"\nanswer = \"新回答\"\n");
    let new = work.path().join("new");
    authoring::build(authoring::BuildArgs {
        source: src.path().into(),
        out: new.clone(),
        key: vec![key],
        version: Some(4),
    })
    .expect("build");
    let diff = diff_report(&old, &new).expect("diff");
    assert!(diff.contains("added items: 1\n  [政策问答] 新问题"), "{diff}");
    assert!(diff.contains("changed items: 1\n  [政策问答] 低保多久批下来？"), "{diff}");
    assert!(diff.contains("removed items: 0"), "{diff}");
    assert!(diff.contains("(2 new blobs"), "only the two changed item blobs travel: {diff}");

    // A changed byte in a blob is caught by verify.
    let blob = std::fs::read_dir(new.join("blobs"))
        .expect("blobs")
        .flatten()
        .next()
        .expect("a blob")
        .path();
    let mut bytes = std::fs::read(&blob).expect("blob");
    bytes[0] ^= 1;
    std::fs::write(&blob, bytes).expect("tamper");
    assert!(verify_bundle(&new, &work.path().join("root.json")).is_err());
}

#[test]
fn a_bad_source_builds_nothing() {
    let work = tempfile::tempdir().expect("temp dir");
    let key = keygen(work.path());
    let src = source("430182");
    write(
        src.path(),
        "faqs.toml",
        "[[faq]]\nid = \"f\"\nquestion = \"q\"\nanswer = \"a\"\nlinks = [\"nope\"]\n",
    );
    let out = work.path().join("out");
    let err = authoring::build(authoring::BuildArgs {
        source: src.path().into(),
        out: out.clone(),
        key: vec![key],
        version: None,
    })
    .expect_err("a broken link must fail the build");
    assert!(err.to_string().contains("nothing was built"), "{err}");
    assert!(!out.exists(), "no bundle folder is written");
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_demo_bundle_is_what_the_demo_source_builds() {
    let demo = repo().join("demo");
    let scopes: Vec<String> = std::fs::read_dir(demo.join("source"))
        .expect("demo/source")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(scopes.len() >= 2, "demo/source has the city and the county");
    let out = tempfile::tempdir().expect("temp dir");
    for scope in &scopes {
        let target = out.path().join(scope);
        authoring::build(authoring::BuildArgs {
            source: demo.join("source").join(scope),
            out: target.clone(),
            key: vec![demo.join("keys/demo-root.key")],
            version: None,
        })
        .unwrap_or_else(|e| panic!("demo/source/{scope} does not build: {e:#}"));
        let committed = tree(&demo.join("bundle").join(scope));
        let built = tree(&target);
        let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&committed),
            names(&built),
            "demo/bundle/{scope} is stale: run demo/build.sh"
        );
        assert!(committed == built, "demo/bundle/{scope} is stale: run demo/build.sh");
        verify_bundle(&demo.join("bundle").join(scope), &demo.join("bundle/root.json"))
            .unwrap_or_else(|e| panic!("demo/bundle/{scope} does not verify: {e}"));
    }
    assert_eq!(
        std::fs::read(demo.join("bundle/root.json")).expect("demo/bundle/root.json"),
        std::fs::read(demo.join("keys/root.json")).expect("demo/keys/root.json")
    );
}

#[test]
fn the_demo_calendar_has_the_official_holidays_and_make_up_days() {
    let (city, _) = load(&repo().join("demo/source/430100"));
    let cal = city.calendar.expect("the city publishes the calendar");
    assert_eq!(cal.years, (2020..=2026).collect::<Vec<_>>());
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    // (date, working day?) from the State Council's 国办发明电 notices.
    for (day, working) in [
        ("2020-01-19", true),
        ("2020-02-01", false),
        ("2020-01-31", false),
        ("2020-05-09", true),
        ("2021-02-07", true),
        ("2021-09-18", true),
        ("2021-10-07", false),
        ("2022-01-29", true),
        ("2022-04-02", true),
        ("2022-10-09", true),
        ("2023-01-28", true),
        ("2023-04-23", true),
        ("2023-10-06", false),
        ("2023-10-08", true),
        ("2024-02-04", true),
        ("2024-02-18", true),
        ("2024-04-07", true),
        ("2024-10-07", false),
        ("2024-10-12", true),
        ("2025-01-26", true),
        ("2025-02-04", false),
        ("2025-02-08", true),
        ("2025-04-27", true),
        ("2025-10-08", false),
        ("2025-10-11", true),
        ("2026-01-02", false),
        ("2026-01-04", true),
        ("2026-02-14", true),
        ("2026-02-23", false),
        ("2026-02-28", true),
        ("2026-05-09", true),
        ("2026-09-20", true),
        ("2026-10-07", false),
        ("2026-10-10", true),
        ("2026-11-23", true),
    ] {
        assert_eq!(cal.is_working_day(d(day)), Ok(working), "{day}");
    }
}

#[test]
fn the_demo_holds_a_plausible_halls_worth_of_content() {
    let mut items = Vec::new();
    for scope in ["430100", "430182", "430182-001-01"] {
        items.extend(load(&repo().join("demo/source").join(scope)).0.items);
    }
    let of = |k: Kind| items.iter().filter(|i| i.kind() == k).collect::<Vec<_>>();
    assert_eq!(of(Kind::Policy).len(), 5, "the five seed notices");
    assert!(of(Kind::Guide).len() >= 12);
    assert!(of(Kind::Faq).len() >= 20);
    assert!(of(Kind::QrLink).len() >= 6);
    assert!(!of(Kind::Gazette).is_empty() && !of(Kind::Office).is_empty());
    let catalog = of(Kind::Catalog);
    let domains: std::collections::BTreeSet<_> =
        catalog.iter().filter_map(|i| i.domain.as_deref()).collect();
    assert!(catalog.len() >= 40 && domains.len() >= 6, "{} rows in {domains:?}", catalog.len());
    let interpretations = of(Kind::Interpretation);
    assert!(interpretations.len() >= 3);
    for i in interpretations {
        let Body::Interpretation(body) = &i.body else { unreachable!("filtered by kind") };
        assert!(
            items.iter().any(|p| p.id == body.policy && p.kind() == Kind::Policy),
            "{} explains a missing policy",
            i.id
        );
    }
    // Today in the demo's story is 2026-11-23: some notices show, some have expired.
    let now =
        chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00+08:00").expect("time").to_utc();
    let notices: Vec<bool> = of(Kind::Notice)
        .iter()
        .map(|n| match &n.body {
            Body::Notice(n) => n.is_showing(now),
            _ => unreachable!("filtered by kind"),
        })
        .collect();
    assert!(notices.len() >= 6);
    assert!(
        notices.iter().filter(|s| **s).count() >= 3 && notices.iter().filter(|s| !**s).count() >= 3,
        "{notices:?}"
    );
}

#[test]
fn a_docx_without_a_sidecar_takes_title_and_issuer_from_its_properties() {
    let dir = source("430182");
    let mut bytes = std::io::Cursor::new(docx(&[("2", "第一章"), ("", "正文")], &[]).to_vec());
    {
        // Add docProps/core.xml to the fixture, as Word writes it.
        let mut zip = zip::ZipWriter::new_append(&mut bytes).expect("append to zip");
        zip.start_file("docProps/core.xml", zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all("<cp:coreProperties xmlns:cp=\"c\" xmlns:dc=\"d\"><dc:title>宁乡市办法</dc:title><dc:creator>宁乡市人民政府</dc:creator></cp:coreProperties>".as_bytes())
            .expect("zip write");
        zip.finish().expect("zip finish");
    }
    write(dir.path(), "documents/nx-2024-1.docx", bytes.into_inner());
    let (content, _) = load(dir.path());
    let item = &content.items[0];
    assert_eq!((item.id.as_str(), item.title.as_str()), ("nx-2024-1", "宁乡市办法"));
    let Body::Policy(p) = &item.body else {
        panic!("a Word document without a sidecar is a 政策文件")
    };
    assert_eq!(p.issuer, "宁乡市人民政府");
    assert_eq!(p.body[0], Block::Heading { level: 2, text: "第一章".into() });

    // Without properties or sidecar, the admin is told what to add.
    let dir = source("430182");
    write(dir.path(), "documents/bare.docx", docx(&[("", "正文")], &[]));
    let e = errors(dir.path());
    assert!(e.to_string().contains("add documents/bare.toml"), "{e}");
}

#[test]
fn sign_adds_a_second_signature_for_a_threshold_root() {
    let work = tempfile::tempdir().expect("temp dir");
    let a = keygen(work.path());
    let b = work.path().join("second.key");
    authoring::keygen(authoring::KeygenArgs {
        out: b.clone(),
        root: Some(work.path().join("root-b.json")),
        expires: None,
        force: false,
    })
    .expect("keygen");
    let src = source("430182");
    write(src.path(), "faqs.toml", "[[faq]]\nid = \"f\"\nquestion = \"q\"\nanswer = \"a\"\n");
    let out = work.path().join("bundle");
    authoring::build(authoring::BuildArgs {
        source: src.path().into(),
        out: out.clone(),
        key: vec![a],
        version: None,
    })
    .expect("build");
    assert!(verify_bundle(&out, &work.path().join("root-b.json")).is_err(), "signed by A only");
    authoring::sign(authoring::SignArgs { bundle: out.clone(), key: vec![b.clone()] })
        .expect("sign");
    authoring::sign(authoring::SignArgs { bundle: out.clone(), key: vec![b] })
        .expect("signing twice replaces");
    verify_bundle(&out, &work.path().join("root-b.json")).expect("now signed by B too");
    verify_bundle(&out, &work.path().join("root.json")).expect("and still by A");
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest");
    assert_eq!(text.matches("\"sig\"").count(), 2);
    assert!(
        authoring::keygen(authoring::KeygenArgs {
            out: work.path().join("city.key"),
            root: None,
            expires: None,
            force: false
        })
        .is_err(),
        "keygen never overwrites a key"
    );
}
