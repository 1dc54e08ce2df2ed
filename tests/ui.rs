//! The touch UI on a headless Slint platform, driven like a resident would: through the
//! accessible labels of the real window (Slint's `ElementHandle`), with the real store and
//! search index built in a temp dir from a small content fixture.
//!
//! Threading: Slint keeps its platform per thread and these tests give it no event loop
//! (results of the search worker are posted into a queue that `Ui::settle` drains), so each
//! `#[test]` sets up the headless platform on its own test thread and they may run in
//! parallel with each other and with the rest of the test binary.

#![cfg(feature = "ui")]

use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use i_slint_backend_testing::ElementHandle;
use kiosk::config::Config;
use kiosk::content::{
    merge, Block, Body, Branding, CatalogEntry, Faq, Guide, Interpretation, Item, Material, Notice,
    Policy, QrLink, ScopeCode, ScopeContent, Validity,
};
use kiosk::store::Store;
use kiosk::ui::{headless, init, Content, Delivery, Page, Ui};
use slint::{ComponentHandle as _, Model as _};

fn item(
    id: &str,
    title: &str,
    domain: Option<&str>,
    url: Option<&str>,
    links: &[&str],
    body: Body,
) -> Item {
    Item {
        id: id.into(),
        title: title.into(),
        domain: domain.map(Into::into),
        baseline: false,
        links: links.iter().map(|s| s.to_string()).collect(),
        url: url.map(Into::into),
        body,
    }
}

fn para(text: &str) -> Block {
    Block::Paragraph { text: text.into() }
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

pub const POLICY_URL: &str = "https://www.changsha.gov.cn/zwgk/cs-rsj-2024-5";
const ITEM_URL_TEMPLATE: &str = "https://zwgk.example.gov.cn/item/{id}";
const TRACKING_URL: &str = "https://zwgk.example.gov.cn/track";

/// A hall's worth of content, small enough to read in a test.
pub fn fixture() -> ScopeContent {
    let now = Utc::now();
    let items = vec![
        item(
            "cs-rsj-2024-5",
            "长沙市城乡居民基本医疗保险实施办法",
            Some("社会保险"),
            Some(POLICY_URL),
            &["jd-2024-5"],
            Body::Policy(Policy {
                doc_number: Some("长政发〔2024〕5号".into()),
                issuer: "长沙市人民政府".into(),
                published: date(2024, 3, 1),
                effective: date(2024, 4, 1),
                validity: Validity::Valid,
                topics: vec!["社会保障".into()],
                keywords: vec!["社保".into(), "医保".into()],
                body: vec![
                    Block::Heading { level: 1, text: "第一章 总则".into() },
                    para("第一条 为健全城乡居民基本医疗保险制度，保障参保人员的基本医疗需求，根据《中华人民共和国社会保险法》等规定，结合本市实际，制定本办法。"),
                    para("第二条 本办法适用于本市行政区域内城乡居民基本医疗保险（以下简称居民医保，俗称社保）的参保缴费、待遇享受和管理服务。"),
                    Block::Table {
                        rows: vec![
                            vec!["缴费档次".into(), "个人缴费（元/年）".into(), "财政补助（元/年）".into()],
                            vec!["一档".into(), "380".into(), "640".into()],
                            vec!["二档".into(), "580".into(), "640".into()],
                        ],
                    },
                ],
                ..Policy::default()
            }),
        ),
        item(
            "nx-2019-3",
            "宁乡市城乡居民基本养老保险实施办法",
            Some("社会保险"),
            Some("https://www.ningxiang.gov.cn/zwgk/nx-2019-3"),
            &[],
            Body::Policy(Policy {
                doc_number: Some("宁政发〔2019〕3号".into()),
                issuer: "宁乡市人民政府".into(),
                published: date(2019, 3, 1),
                validity: Validity::Repealed,
                body: vec![para("第一条 为建立和完善城乡居民基本养老保险制度，制定本办法。")],
                ..Policy::default()
            }),
        ),
        item(
            "cs-zwb-2020-8",
            "长沙市人民政府办公厅关于进一步加强政务公开专区建设的通知",
            Some("政务公开"),
            // No address of its own: its QR comes from the branding's item_url template.
            None,
            &[],
            Body::Policy(Policy {
                doc_number: Some("长政办函〔2020〕8号".into()),
                issuer: "长沙市人民政府办公厅".into(),
                published: date(2020, 5, 9),
                body: vec![para("各区县（市）人民政府，市直机关各单位：为推进基层政务公开标准化规范化，现就政务公开专区建设通知如下。")],
                ..Policy::default()
            }),
        ),
        item(
            "jd-2024-5",
            "一图读懂长沙市城乡居民医保新办法",
            Some("社会保险"),
            None,
            &[],
            Body::Interpretation(Interpretation {
                policy: "cs-rsj-2024-5".into(),
                author: Some("长沙市医疗保障局".into()),
                published: date(2024, 3, 5),
                body: vec![para("新办法明确了参保范围、缴费档次和待遇标准。")],
            }),
        ),
        item(
            "zn-sbk",
            "社保卡申领",
            Some("社会保险"),
            Some("https://zwfw.changsha.gov.cn/guide/sbk"),
            &["cs-rsj-2024-5"],
            Body::Guide(Guide {
                matter: "社会保障卡申领".into(),
                authority: "宁乡市人力资源和社会保障局".into(),
                location: "宁乡市政务服务中心一楼3号窗口".into(),
                hours: "工作日 9:00-17:00".into(),
                phone: "0731-87888888".into(),
                materials: vec![Material { name: "居民身份证".into(), note: "原件".into() }],
                steps: vec!["窗口提交材料".into(), "现场制卡".into()],
                time_limit: "即办".into(),
                fee: "不收费".into(),
                ..Guide::default()
            }),
        ),
        item(
            "ml-1",
            "参保登记",
            Some("社会保险"),
            None,
            &[],
            Body::Catalog(CatalogEntry {
                level1: "社会保险登记".into(),
                level2: "参保登记".into(),
                content: "办理依据、办理条件、办理流程、办理结果".into(),
                basis: "《中华人民共和国社会保险法》".into(),
                time_limit: "自信息形成或变更之日起20个工作日内".into(),
                subject: "宁乡市人力资源和社会保障局".into(),
                channels: vec!["政府网站".into(), "政务公开专区".into()],
                audience: "全社会".into(),
                manner: "主动".into(),
                tier: "县级".into(),
                serial: Some("1".into()),
            }),
        ),
        item(
            "faq-1",
            "城乡居民医保每年什么时候缴费？",
            Some("社会保险"),
            None,
            &[],
            Body::Faq(Faq {
                question: "城乡居民医保每年什么时候缴费？".into(),
                answer: "每年9月至12月集中缴费，次年1月1日起享受待遇。".into(),
                published: date(2024, 9, 1),
            }),
        ),
        item(
            "tz-1",
            "关于调整政务服务中心办公时间的通知",
            None,
            None,
            &[],
            Body::Notice(Notice {
                published: now.date_naive(),
                show_from: now - chrono::Duration::days(1),
                show_until: now + chrono::Duration::days(30),
                pinned: true,
                body: vec![para("自下月起，政务服务中心工作日办公时间调整为8:30-17:30。")],
            }),
        ),
        item(
            "qr-xyb",
            "湘易办",
            None,
            None,
            &[],
            Body::QrLink(QrLink { target: "https://xyb.hunan.gov.cn".into(), description: Some("湖南省政务服务移动端".into()) }),
        ),
        item(
            "qr-12345",
            "12345 政务服务便民热线",
            None,
            None,
            &[],
            Body::QrLink(QrLink { target: "https://12345.changsha.gov.cn".into(), description: Some("咨询、投诉、建议".into()) }),
        ),
    ];
    ScopeContent {
        scope: ScopeCode::parse("430100").expect("valid scope"),
        items,
        branding: Some(Branding {
            zone_name: "长沙市政务公开专区".into(),
            subtitle: "宁乡市政务服务中心".into(),
            hotline: "0731-12345".into(),
            item_url: Some(ITEM_URL_TEMPLATE.into()),
            tracking_url: Some(TRACKING_URL.into()),
            ..Branding::default()
        }),
        ..ScopeContent::default()
    }
}

/// The fixture as a store and a search index in `dir`.
pub fn fixture_content(dir: &Path) -> Content {
    let merged = merge(&[fixture()]).expect("fixture merges");
    let store = Store::in_memory(&merged).expect("fixture store");
    let index = dir.join("index");
    std::fs::create_dir_all(&index).expect("index dir");
    kiosk::search::build_index(&index, &merged).expect("fixture index");
    let desk = kiosk::ui::Desk {
        outbox: kiosk::requests::Outbox::open(&dir.join("outbox.db")).expect("outbox"),
        city_key: kiosk::requests::CitySecret::generate().public(),
    };
    Content {
        store: Some(store),
        finder: kiosk::ui::worker::open_finder(&index),
        problem: None,
        versions: vec!["430100 v1".into()],
        desk: Some(desk),
        logo: None,
    }
}

fn config() -> Config {
    Config {
        // sha256("2468")
        admin_pin_hash: format!("sha256:{}", hex_sha256("2468")),
        ..Config::for_development()
    }
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A window on the headless platform, sized as a landscape kiosk, showing home.
fn start(dir: &Path) -> Ui {
    headless::init().expect("headless platform");
    let ui = init(&config(), fixture_content(dir), Delivery::Queue).expect("window");
    headless::set_size(ui.window.window(), 1920, 1080).expect("size");
    settle(&ui);
    ui
}

/// Lets posted results arrive and the window lay itself out, as a frame would.
fn settle(ui: &Ui) {
    ui.settle();
    i_slint_backend_testing::mock_elapsed_time(Duration::from_millis(20));
    let _ = headless::snapshot(ui.window.window());
}

/// The control labelled `label`: a button or a text field, not a text that says the same.
fn find(ui: &Ui, label: &str) -> ElementHandle {
    use i_slint_backend_testing::AccessibleRole;
    ElementHandle::find_by_accessible_label(&ui.window, label)
        .find(|e| {
            e.is_valid()
                && matches!(
                    e.accessible_role(),
                    Some(AccessibleRole::Button | AccessibleRole::TextInput)
                )
        })
        .unwrap_or_else(|| {
            // Leave a picture of the screen for whoever reads the failure.
            let png = std::env::temp_dir().join(format!("ui-test-{}.png", std::process::id()));
            if let Ok(pixels) = headless::snapshot(ui.window.window()) {
                let _ = headless::write_png(&pixels, &png);
            }
            panic!(
                "nothing labelled “{label}” on page {:?}; screen in {}",
                ui.page(),
                png.display()
            )
        })
}

fn exists(ui: &Ui, label: &str) -> bool {
    ElementHandle::find_by_accessible_label(&ui.window, label).next().is_some()
}

fn tap(ui: &Ui, label: &str) {
    find(ui, label).invoke_accessible_default_action();
    settle(ui);
}

#[test]
fn every_home_tile_opens_its_function_and_home_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let expect: &[(&str, &str)] = &[
        ("政策文件", "list"),
        ("政策解读", "list"),
        ("办事指南", "list"),
        ("公开目录", "catalog"),
        ("政策问答", "list"),
        ("政府公报", "list"),
        ("依申请公开", "form"),
        ("意见建议", "form"),
        ("扫码服务", "qr"),
    ];
    for (tile, page) in expect {
        tap(&ui, tile);
        assert_eq!(ui.page().name(), *page, "tile {tile}");
        tap(&ui, "首页");
        assert_eq!(ui.page(), Page::Home);
    }
    // A list shows its items; a repealed one says so in words.
    tap(&ui, "政策文件");
    assert!(exists(&ui, "长沙市城乡居民基本医疗保险实施办法"));
    tap(&ui, "宁乡市城乡居民基本养老保险实施办法");
    assert!(exists(&ui, "本文件已废止，仅供查阅，不再作为办事依据"));
    tap(&ui, "返回");
    assert_eq!(ui.page().name(), "list");
}

#[test]
fn the_catalogue_goes_from_domain_to_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    tap(&ui, "公开目录");
    tap(&ui, "社会保险");
    tap(&ui, "社会保险登记");
    tap(&ui, "参保登记");
    // The 二级事项 level lists the item itself, which opens with all its elements.
    tap(&ui, "参保登记");
    assert_eq!(ui.page(), Page::Reader("ml-1".into()));
}

#[test]
fn search_by_typing_pinyin_on_the_keyboard_and_open_a_hit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    tap(&ui, "搜索");
    assert!(exists(&ui, "键 s"), "the keyboard opens with the search box");
    for k in ["s", "h", "e", "b", "a", "o"] {
        tap(&ui, &format!("键 {k}"));
    }
    tap(&ui, "候选 社保");
    assert_eq!(find(&ui, "搜索框").accessible_value().as_deref(), Some("社保"));
    // The hit list comes from the search worker; the guide titled 社保卡申领 is among them.
    // 确定 closes the keyboard so the whole list of hits shows.
    tap(&ui, "确定");
    tap(&ui, "社保卡申领");
    assert_eq!(ui.page(), Page::Reader("zn-sbk".into()));
    // The guide links back to its policy.
    tap(&ui, "长沙市城乡居民基本医疗保险实施办法");
    assert_eq!(ui.page(), Page::Reader("cs-rsj-2024-5".into()));
}

#[test]
fn care_mode_switches_on_and_back_off_from_any_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let theme = ui.window.global::<kiosk::ui::Theme>();
    let body_size = theme.get_font_body();
    tap(&ui, "政策文件");
    tap(&ui, "关怀模式");
    assert!(theme.get_care());
    assert!(
        find(&ui, "关怀模式").accessible_checked() == Some(true),
        "the state is announced, not only coloured"
    );
    assert!(theme.get_font_body() >= body_size * 1.5, "text at least 1.5× larger");
    assert!(theme.get_line_spacing() >= 1.3);
    tap(&ui, "关怀模式");
    assert!(!theme.get_care());
    assert_eq!(theme.get_font_body(), body_size);
}

/// Every home tile is tall enough for its badge and label and wide enough for the label, in
/// both orientations and in 关怀 mode, whose larger text once overflowed tiles squeezed into
/// too many rows.
#[test]
fn home_tiles_fit_their_labels_in_every_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let theme = ui.window.global::<kiosk::ui::Theme>();
    let labels = ["政策文件", "依申请公开", "意见建议", "扫码服务"];
    for (w, h) in [(1920, 1080), (1080, 1920)] {
        for care in [false, true] {
            headless::set_size(ui.window.window(), w, h).expect("size");
            ui.set_care(care);
            settle(&ui);
            let text = theme.get_font_large();
            for label in labels {
                let size = find(&ui, label).size();
                let chars = label.chars().count() as f32;
                assert!(
                    // Padding, the smallest badge, spacing and a line of the label.
                    size.height >= 24.0 + 44.0 + 8.0 + text * 1.4
                        && size.width >= text * chars + 24.0,
                    "{w}×{h}, care {care}: tile {label} is {}×{} for text of {text} px",
                    size.width,
                    size.height
                );
            }
        }
    }
}

/// The pager of a list stays above the footer in every layout, however much the rows'
/// titles wrap (they once pushed it under the footer, out of a resident's reach).
#[test]
fn the_list_pager_stays_in_reach_in_every_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    tap(&ui, "政策文件");
    for (w, h) in [(1920, 1080), (1080, 1920)] {
        for care in [false, true] {
            headless::set_size(ui.window.window(), w, h).expect("size");
            ui.set_care(care);
            settle(&ui);
            let next = find(&ui, "下一页 ›");
            let back = find(&ui, "返回");
            let bottom = next.absolute_position().y + next.size().height;
            assert!(
                bottom <= back.absolute_position().y,
                "{w}×{h}, care {care}: the pager ends at {bottom}, the footer starts at {}",
                back.absolute_position().y
            );
        }
    }
}

#[test]
fn idle_timeout_wipes_a_half_filled_form() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    tap(&ui, "意见建议");
    tap(&ui, "意见或建议");
    tap(&ui, "英文输入");
    for k in ["a", "b", "c"] {
        tap(&ui, &format!("键 {k}"));
    }
    assert_eq!(find(&ui, "意见或建议").accessible_value().as_deref(), Some("abc"));
    // The default idle time is 90 s, then a 10 s countdown.
    for _ in 0..95 {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_secs(1));
    }
    settle(&ui);
    assert!(exists(&ui, "继续使用"), "the countdown asks first");
    for _ in 0..10 {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_secs(1));
    }
    settle(&ui);
    assert!(exists(&ui, "轻触屏幕开始"), "the attract loop plays");
    tap(&ui, "轻触屏幕开始");
    assert_eq!(ui.page(), Page::Home);
    tap(&ui, "意见建议");
    assert_eq!(
        find(&ui, "意见或建议").accessible_value().as_deref(),
        Some(""),
        "nothing typed survives"
    );
}

/// Fills the open 意见建议 form with the keyboard and sends it.
fn fill_and_submit_a_suggestion(ui: &Ui) {
    tap(ui, "服务态度");
    tap(ui, "意见或建议");
    tap(ui, "中文输入");
    for k in ["h", "a", "o"] {
        tap(ui, &format!("键 {k}"));
    }
    tap(ui, "候选 好");
    tap(ui, "收起键盘");
    // The rating is further down: swipe the form up, as a finger would.
    find(ui, "意见或建议").scroll(0.0, -600.0);
    settle(ui);
    tap(ui, "满意");
    tap(ui, "提交");
}

#[test]
fn a_suggestion_is_checked_then_sealed_and_a_receipt_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let form = ui.window.global::<kiosk::ui::FormAdapter>();
    tap(&ui, "意见建议");
    tap(&ui, "提交");
    assert!(!form.get_submitted(), "an empty form is not sent");
    assert!(
        slint::Model::iter(&form.get_fields()).any(|f| !f.error.is_empty()),
        "the missing fields say so"
    );
    fill_and_submit_a_suggestion(&ui);
    assert!(form.get_submitted(), "message: {}", form.get_message());
    let number = slint::Model::iter(&form.get_receipt())
        .find(|r| r.key == "回执编号")
        .map(|r| r.value.to_string())
        .expect("a receipt number");
    assert!(!number.is_empty());
    // The receipt's QR follows the request online; without a printer there is no 打印回执.
    let tracking = format!("{TRACKING_URL}?no={number}");
    assert!(
        slint::Model::iter(&form.get_receipt()).any(|r| r.key == "查询网址" && r.value == tracking)
    );
    assert_eq!(decode_qr(&ui, dir.path()), tracking);
    assert!(!exists(&ui, "打印回执"), "no printer, no print button");
    tap(&ui, "完成");
    assert_eq!(
        find(&ui, "意见或建议").accessible_value().as_deref(),
        Some(""),
        "the sent text is gone from the screen"
    );
}

#[test]
fn the_admin_panel_refuses_a_wrong_pin_and_opens_with_the_right_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let admin = ui.window.global::<kiosk::ui::AdminAdapter>();
    // Five taps on the logo; the logo has no label, so tap its callback like a finger would.
    for _ in 0..5 {
        ui.window.global::<kiosk::ui::NavAdapter>().invoke_logo_tapped();
    }
    settle(&ui);
    assert!(admin.get_open());
    for d in ["1", "2", "3", "4"] {
        tap(&ui, &format!("数字 {d}"));
    }
    tap(&ui, "确认密码");
    assert!(!admin.get_unlocked(), "a wrong PIN is refused");
    assert!(exists(&ui, "数字 1"), "the PIN pad stays");
    for d in ["2", "4", "6", "8"] {
        tap(&ui, &format!("数字 {d}"));
    }
    tap(&ui, "确认密码");
    assert!(admin.get_unlocked());
    tap(&ui, "关闭管理");
    assert!(!admin.get_open());
}

/// What `zbarimg` reads from a screenshot of the window.
fn decode_qr(ui: &Ui, dir: &Path) -> String {
    if std::process::Command::new("zbarimg").arg("--version").output().is_err() {
        panic!("zbarimg is needed for this test: apt-get install zbar-tools");
    }
    let png = dir.join("screen.png");
    let pixels = headless::snapshot(ui.window.window()).expect("render");
    headless::write_png(&pixels, &png).expect("png");
    let out = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(&png)
        .output()
        .expect("zbarimg runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_qr_code_on_a_policy_page_decodes_to_its_canonical_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    // A policy with an address of its own.
    ui.open(Page::Reader("cs-rsj-2024-5".into()));
    settle(&ui);
    assert_eq!(decode_qr(&ui, dir.path()), POLICY_URL);
    assert!(!exists(&ui, "打印"), "no printer, no print button");
    // A policy without one: the scope's template.
    ui.open(Page::Reader("cs-zwb-2020-8".into()));
    settle(&ui);
    assert_eq!(decode_qr(&ui, dir.path()), ITEM_URL_TEMPLATE.replace("{id}", "cs-zwb-2020-8"));
}

#[test]
fn printing_runs_off_the_ui_thread_and_says_when_it_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    headless::init().expect("headless platform");
    // A queue no CUPS has: lp refuses it (or finds no scheduler), as a broken printer would.
    let config = Config { printer: "kiosk-no-such-queue".into(), ..config() };
    let ui = init(&config, fixture_content(dir.path()), Delivery::Queue).expect("window");
    headless::set_size(ui.window.window(), 1920, 1080).expect("size");
    settle(&ui);
    ui.open(Page::Reader("cs-rsj-2024-5".into()));
    settle(&ui);
    let reader = ui.window.global::<kiosk::ui::ReaderAdapter>();
    tap(&ui, "打印");
    // The tap returns at once; the outcome arrives through the UI queue.
    crate::util::wait_until("the print outcome", Duration::from_secs(30), || {
        ui.settle();
        reader.get_status() == kiosk::print::FAILED
    });
    // The receipt of a sent form has 打印回执, which reports the same way.
    ui.open(Page::Home);
    settle(&ui);
    tap(&ui, "意见建议");
    fill_and_submit_a_suggestion(&ui);
    let form = ui.window.global::<kiosk::ui::FormAdapter>();
    assert!(form.get_submitted(), "message: {}", form.get_message());
    tap(&ui, "打印回执");
    crate::util::wait_until("the receipt print outcome", Duration::from_secs(30), || {
        ui.settle();
        form.get_print_status() == kiosk::print::FAILED
    });
    // The resident saw a plain message; the admin panel lists both failures with lp's reason.
    for _ in 0..5 {
        ui.window.global::<kiosk::ui::NavAdapter>().invoke_logo_tapped();
    }
    settle(&ui);
    for d in ["2", "4", "6", "8"] {
        tap(&ui, &format!("数字 {d}"));
    }
    tap(&ui, "确认密码");
    let admin = ui.window.global::<kiosk::ui::AdminAdapter>();
    assert!(admin.get_unlocked());
    let errors: Vec<String> = admin.get_errors().iter().map(|e| e.to_string()).collect();
    assert!(
        errors[0].starts_with("打印回执失败：") && errors[1].starts_with("打印失败："),
        "{errors:?}"
    );
    assert!(errors[0].contains("kiosk-no-such-queue"), "the reason names the queue: {errors:?}");
}

/// New content installed behind the running window (here by `kiosk install`, as from a USB
/// stick on an offline kiosk; sync and the admin's rollback switch `current` the same way)
/// is served once the resident has left: not while someone reads, only after the home screen
/// has been idle for a while, and then the window ends its loop for a restart in place.
#[test]
fn new_content_is_served_after_the_resident_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config { data_dir: dir.path().join("data"), ..config() };
    kiosk::bundle::embedded::install_demo(&config).expect("the demo installs");
    // Version 2 of the demo hall, signed with the demo key as the city would sign it.
    // The whole source tree: the hall's links point into its county's folder.
    copy_dir(&root.join("demo/source"), &dir.path().join("source"));
    let hall = dir.path().join("source/430182-001-01");
    let toml = std::fs::read_to_string(hall.join("bundle.toml")).expect("bundle.toml");
    std::fs::write(hall.join("bundle.toml"), toml.replace("version = 1", "version = 2"))
        .expect("bump the version");
    let v2 = dir.path().join("v2");
    let build = ["build", path(&hall), "--out", path(&v2), "--key"]
        .into_iter()
        .map(String::from)
        .chain([root.join("demo/keys/demo-root.key").display().to_string()])
        .collect::<Vec<_>>();
    crate::sync::content_sync(&build).expect("content-sync build");

    headless::init().expect("headless platform");
    let ui = init(&config, Content::installed(&config), Delivery::Queue).expect("window");
    headless::set_size(ui.window.window(), 1920, 1080).expect("size");
    settle(&ui);
    ui.sync_tick();
    assert_eq!(ui.pending_exit(), None, "nothing new yet");

    kiosk::bundle::install_dir(&config, &v2).expect("version 2 installs");
    tap(&ui, "政策文件");
    for _ in 0..30 {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_secs(1));
        ui.sync_tick();
    }
    assert_eq!(ui.pending_exit(), None, "a resident is reading: no reload under their hands");
    tap(&ui, "首页");
    for _ in 0..(kiosk::ui::RELOAD_IDLE_SECONDS - 2) {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_secs(1));
        ui.sync_tick();
    }
    assert_eq!(ui.pending_exit(), None, "home, but only just left");
    for _ in 0..4 {
        i_slint_backend_testing::mock_elapsed_time(Duration::from_secs(1));
        ui.sync_tick();
    }
    assert_eq!(ui.pending_exit(), Some(kiosk::ui::Exit::Reload));
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Renders every page in both orientations and both modes from the fixture, into the
/// directory named by `KIOSK_GALLERY` (for visual review; `kiosk screenshot` does the same
/// with the installed content). Run with `cargo test --test tests gallery -- --ignored`.
#[test]
#[ignore = "writes PNG files for visual review"]
fn gallery() {
    let Some(out) = std::env::var_os("KIOSK_GALLERY") else { return };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out).expect("gallery dir");
    let pages: Vec<String> = match std::env::var("KIOSK_GALLERY_PAGES") {
        Ok(p) => p.split(',').map(str::to_string).collect(),
        Err(_) => kiosk::ui::screenshot::PAGES.iter().map(|s| s.to_string()).collect(),
    };
    for page in &pages {
        for (portrait, care) in [(false, false), (true, false), (false, true), (true, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let name = format!(
                "{page}{}{}.png",
                if portrait { "-portrait" } else { "" },
                if care { "-care" } else { "" }
            );
            kiosk::ui::screenshot::render(
                &config(),
                fixture_content(dir.path()),
                page,
                portrait,
                care,
                &out.join(name),
            )
            .expect("screenshot");
        }
    }
}

#[test]
fn the_admin_panel_shows_sync_is_not_configured_and_offers_resync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let admin = ui.window.global::<kiosk::ui::AdminAdapter>();
    for _ in 0..5 {
        ui.window.global::<kiosk::ui::NavAdapter>().invoke_logo_tapped();
    }
    settle(&ui);
    assert!(!exists(&ui, "立即同步"), "nothing of the panel before the PIN");
    for d in ["2", "4", "6", "8"] {
        tap(&ui, &format!("数字 {d}"));
    }
    tap(&ui, "确认密码");
    assert!(admin.get_unlocked());
    // No broker in this config: the panel says so instead of pretending to be connected.
    assert!(exists(&ui, "未配置（本机离线运行）"), "the sync line says sync is not configured");
    assert!(!exists(&ui, "已连接"));
    assert!(exists(&ui, "回退到上一版本"));
    tap(&ui, "立即同步");
    assert!(exists(&ui, "本机未配置同步服务器，无法同步"), "resync explains why nothing happens");
}

#[test]
fn usage_counts_a_search_and_an_item_view_but_never_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    tap(&ui, "搜索");
    for k in ["s", "h", "e", "b", "a", "o"] {
        tap(&ui, &format!("键 {k}"));
    }
    tap(&ui, "候选 社保");
    // The query stands still for a tick: one search, however many keys it took.
    ui.sync_tick();
    ui.sync_tick();
    tap(&ui, "确定");
    ui.sync_tick();
    tap(&ui, "社保卡申领");
    ui.sync_tick();
    ui.sync_tick();
    let counts = ui.telemetry().take();
    assert_eq!(counts.searches, 1, "{counts:?}");
    assert_eq!(counts.views.get("zn-sbk"), Some(&1), "one view of the opened guide");
    assert!(counts.touches >= 9, "every tap is a touch: {counts:?}");
    assert!(!format!("{counts:?}").contains('社'), "no text the resident typed");
}

#[test]
fn a_remote_announcement_leads_the_notice_strip_on_home() {
    use kiosk::sync::{protocol::Action, UiCommand};
    let dir = tempfile::tempdir().expect("tempdir");
    let ui = start(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    ui.receive_commands(rx);
    let text = "今日下午系统维护，请到窗口办理";
    tx.send(UiCommand {
        id: "c1".into(),
        action: Action::Announce { text: text.into(), seconds: 0 },
    })
    .expect("send");
    ui.sync_tick();
    settle(&ui);
    let notices = ui.window.global::<kiosk::ui::HomeAdapter>().get_notices();
    let first = slint::Model::row_data(&notices, 0).expect("a notice row");
    assert_eq!(first.title, text);
    assert!(exists(&ui, text), "the announcement is on the home screen");
    // Still first after home is rebuilt (the strip is refilled whenever home shows).
    tap(&ui, "搜索");
    tap(&ui, "首页");
    ui.sync_tick();
    settle(&ui);
    assert!(exists(&ui, text));
}
