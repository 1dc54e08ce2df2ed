//! The content model: every kind of thing a kiosk shows, as plain serde data.
//!
//! Nothing here does IO. The same types are written by content-sync (from Word, Excel,
//! Markdown and TOML sources), carried in signed bundles, stored in the kiosk's SQLite
//! database and indexed for search.
//!
//! Chinese field meanings are given in the doc comments; JSON field names are English
//! snake_case so that scripts and other systems can read bundles without a glossary.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A stable, human-chosen identifier, unique across a scope chain, e.g. `cs-zwb-2020-8`.
/// Lower scopes override a higher scope's item by reusing its id.
pub type ItemId = String;

/// One piece of content a resident can find and read.
///
/// The fields every kind shares are here; the kind-specific ones are in [`Body`], which is
/// flattened into the same JSON object and tagged by `"kind"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub title: String,
    /// 领域: one of the 26 standard disclosure domains (see [`DOMAINS`]), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Marked by the city as part of the 统一公开内容 baseline: a lower scope may neither
    /// remove nor override it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub baseline: bool,
    /// Ids of related items (文件 ↔ 解读 ↔ 指南 ↔ 问答). Links are symmetric for display:
    /// the store answers "what links here" as well as "what does this link to".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<ItemId>,
    /// The page on the city's website, shown as a “扫码带走” QR code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(flatten)]
    pub body: Body,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The kind-specific part of an [`Item`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Policy(Policy),
    Interpretation(Interpretation),
    Guide(Guide),
    Catalog(CatalogEntry),
    Faq(Faq),
    Notice(Notice),
    Gazette(Gazette),
    QrLink(QrLink),
    Office(Office),
}

/// The kinds of [`Item`], for lists, filters and the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Policy,
    Interpretation,
    Guide,
    Catalog,
    Faq,
    Notice,
    Gazette,
    QrLink,
    Office,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Policy,
        Kind::Interpretation,
        Kind::Guide,
        Kind::Catalog,
        Kind::Faq,
        Kind::Notice,
        Kind::Gazette,
        Kind::QrLink,
        Kind::Office,
    ];

    /// The machine name used in JSON, the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::Interpretation => "interpretation",
            Kind::Guide => "guide",
            Kind::Catalog => "catalog",
            Kind::Faq => "faq",
            Kind::Notice => "notice",
            Kind::Gazette => "gazette",
            Kind::QrLink => "qr_link",
            Kind::Office => "office",
        }
    }

    /// The name a resident reads on screen.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Policy => "政策文件",
            Kind::Interpretation => "政策解读",
            Kind::Guide => "办事指南",
            Kind::Catalog => "公开目录",
            Kind::Faq => "政策问答",
            Kind::Notice => "通知公告",
            Kind::Gazette => "政府公报",
            Kind::QrLink => "扫码服务",
            Kind::Office => "办事机构",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s || k.label() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Item {
    pub fn kind(&self) -> Kind {
        match &self.body {
            Body::Policy(_) => Kind::Policy,
            Body::Interpretation(_) => Kind::Interpretation,
            Body::Guide(_) => Kind::Guide,
            Body::Catalog(_) => Kind::Catalog,
            Body::Faq(_) => Kind::Faq,
            Body::Notice(_) => Kind::Notice,
            Body::Gazette(_) => Kind::Gazette,
            Body::QrLink(_) => Kind::QrLink,
            Body::Office(_) => Kind::Office,
        }
    }

    /// The date that orders items "newest first": publication, else the best date the kind has.
    pub fn date(&self) -> Option<NaiveDate> {
        match &self.body {
            Body::Policy(p) => p.published.or(p.written).or(p.effective),
            Body::Interpretation(i) => i.published,
            Body::Guide(_) | Body::Catalog(_) | Body::QrLink(_) | Body::Office(_) => None,
            Body::Faq(f) => f.published,
            Body::Notice(n) => Some(n.published),
            Body::Gazette(g) => Some(g.published),
        }
    }

    /// 效力状态, for kinds that have one (policies). Everything else counts as in force.
    pub fn validity(&self) -> Validity {
        match &self.body {
            Body::Policy(p) => p.validity,
            _ => Validity::Valid,
        }
    }

    /// Every piece of readable text of the item, in reading order, for search and for the
    /// "contains the query" recall guarantee. The title is not included.
    pub fn text_fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        match &self.body {
            Body::Policy(p) => {
                out.extend(p.doc_number.as_deref());
                out.push(&p.issuer);
                out.extend(p.topics.iter().map(String::as_str));
                out.extend(p.keywords.iter().map(String::as_str));
                push_blocks(&mut out, &p.body);
            }
            Body::Interpretation(i) => {
                out.extend(i.author.as_deref());
                push_blocks(&mut out, &i.body);
            }
            Body::Guide(g) => {
                out.push(&g.matter);
                out.push(&g.authority);
                out.extend(
                    [&g.location, &g.hours, &g.phone, &g.time_limit, &g.fee].map(String::as_str),
                );
                out.extend(g.materials.iter().flat_map(|m| [m.name.as_str(), m.note.as_str()]));
                out.extend(g.steps.iter().map(String::as_str));
                out.extend(g.basis.iter().map(String::as_str));
                out.extend(g.faqs.iter().flat_map(|q| [q.question.as_str(), q.answer.as_str()]));
            }
            Body::Catalog(c) => {
                out.extend(
                    [&c.level1, &c.level2, &c.content, &c.basis, &c.time_limit, &c.subject]
                        .map(String::as_str),
                );
                out.extend(c.channels.iter().map(String::as_str));
                out.extend([&c.audience, &c.manner, &c.tier].map(String::as_str));
            }
            Body::Faq(f) => {
                out.push(&f.question);
                out.push(&f.answer);
            }
            Body::Notice(n) => push_blocks(&mut out, &n.body),
            Body::Gazette(g) => {
                out.push(&g.issue);
                out.extend(g.contents.iter().map(String::as_str));
            }
            Body::QrLink(q) => {
                out.push(&q.target);
                out.extend(q.description.as_deref());
            }
            Body::Office(o) => {
                out.extend([&o.address, &o.hours, &o.phone].map(String::as_str));
                out.extend(o.services.iter().map(String::as_str));
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }
}

fn push_blocks<'a>(out: &mut Vec<&'a str>, blocks: &'a [Block]) {
    for block in blocks {
        match block {
            Block::Heading { text, .. } | Block::Paragraph { text } => out.push(text),
            Block::Table { rows } => out.extend(rows.iter().flatten().map(String::as_str)),
        }
    }
}

/// Rich text as admins write it in Word: headings, paragraphs and tables, kept in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Heading { level: u8, text: String },
    Paragraph { text: String },
    Table { rows: Vec<Vec<String>> },
}

/// 效力状态.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// 有效
    #[default]
    Valid,
    /// 失效
    Expired,
    /// 废止
    Repealed,
    /// 已修订
    Amended,
}

impl Validity {
    pub const ALL: [Validity; 4] =
        [Validity::Valid, Validity::Expired, Validity::Repealed, Validity::Amended];

    pub fn label(self) -> &'static str {
        match self {
            Validity::Valid => "有效",
            Validity::Expired => "失效",
            Validity::Repealed => "废止",
            Validity::Amended => "已修订",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Expired => "expired",
            Validity::Repealed => "repealed",
            Validity::Amended => "amended",
        }
    }

    /// Accepts the Chinese label or the machine name, as admins write either.
    pub fn parse(s: &str) -> Option<Validity> {
        let s = s.trim();
        Validity::ALL.into_iter().find(|v| v.as_str() == s || v.label() == s).or(match s {
            "已失效" => Some(Validity::Expired),
            "已废止" => Some(Validity::Repealed),
            "现行有效" => Some(Validity::Valid),
            "修订" => Some(Validity::Amended),
            _ => None,
        })
    }

    /// Whether a resident may rely on the document today.
    pub fn in_force(self) -> bool {
        matches!(self, Validity::Valid)
    }
}

/// 公开属性.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// 主动公开
    #[default]
    Proactive,
    /// 依申请公开
    OnRequest,
}

impl Disclosure {
    pub fn label(self) -> &'static str {
        match self {
            Disclosure::Proactive => "主动公开",
            Disclosure::OnRequest => "依申请公开",
        }
    }

    pub fn parse(s: &str) -> Option<Disclosure> {
        match s.trim() {
            "主动公开" | "proactive" | "此件主动公开" | "公开发布" => {
                Some(Disclosure::Proactive)
            }
            "依申请公开" | "on_request" => Some(Disclosure::OnRequest),
            _ => None,
        }
    }
}

/// 政策文件.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// 文号, e.g. 长政务办〔2020〕8号.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_number: Option<String>,
    /// 发文机关.
    pub issuer: String,
    /// 成文日期.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<NaiveDate>,
    /// 发布日期.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<NaiveDate>,
    /// 施行日期.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<NaiveDate>,
    /// 效力状态.
    #[serde(default)]
    pub validity: Validity,
    /// 公开属性.
    #[serde(default)]
    pub disclosure: Disclosure,
    /// 主题分类, e.g. 政务公开, 社会保障.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// Key terms that get pinyin in the search index besides the title.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub body: Vec<Block>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file that goes with a document (a form, a table), stored as a blob of the bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    /// The bundle-relative path of the blob, e.g. `attachments/申请表.docx`.
    pub path: String,
}

/// 政策解读, linked to the document it explains.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Interpretation {
    /// The id of the 政策文件 it interprets.
    pub policy: ItemId,
    /// 解读机关 or author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<NaiveDate>,
    #[serde(default)]
    pub body: Vec<Block>,
}

/// 办事指南 for one 事项.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Guide {
    /// 事项名称.
    pub matter: String,
    /// 实施主体.
    pub authority: String,
    /// 办理地点.
    #[serde(default)]
    pub location: String,
    /// 办理时间.
    #[serde(default)]
    pub hours: String,
    /// 咨询电话.
    #[serde(default)]
    pub phone: String,
    /// 申请材料.
    #[serde(default)]
    pub materials: Vec<Material>,
    /// 办理流程, one step a line.
    #[serde(default)]
    pub steps: Vec<String>,
    /// 办理时限, e.g. 5个工作日.
    #[serde(default)]
    pub time_limit: String,
    /// 收费标准, e.g. 不收费.
    #[serde(default)]
    pub fee: String,
    /// 设定依据.
    #[serde(default)]
    pub basis: Vec<String>,
    /// 常见问题.
    #[serde(default)]
    pub faqs: Vec<QuestionAnswer>,
    /// 在线办理 URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_url: Option<String>,
}

/// One 申请材料 of a guide.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Material {
    pub name: String,
    /// e.g. 原件1份、复印件1份.
    #[serde(default)]
    pub note: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuestionAnswer {
    pub question: String,
    pub answer: String,
}

/// One row of the 政务公开事项标准目录. The item's `domain` is its 领域; its title is the
/// 二级事项 (or the 一级事项 when there is none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// 序号 in the source catalogue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// 一级事项.
    pub level1: String,
    /// 二级事项.
    #[serde(default)]
    pub level2: String,
    /// 公开内容（要素）.
    pub content: String,
    /// 公开依据.
    #[serde(default)]
    pub basis: String,
    /// 公开时限.
    #[serde(default)]
    pub time_limit: String,
    /// 公开主体.
    #[serde(default)]
    pub subject: String,
    /// 公开渠道和载体.
    #[serde(default)]
    pub channels: Vec<String>,
    /// 公开对象: 全社会 or 特定群体.
    #[serde(default)]
    pub audience: String,
    /// 公开方式: 主动 or 依申请.
    #[serde(default)]
    pub manner: String,
    /// 公开层级: 县级, 乡级, ….
    #[serde(default)]
    pub tier: String,
}

/// 政策问答.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faq {
    pub question: String,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<NaiveDate>,
}

/// 通知公告, shown only inside its display window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub published: NaiveDate,
    /// First moment the notice is shown.
    pub show_from: DateTime<Utc>,
    /// Moment it stops being shown; it stays findable in search afterwards.
    pub show_until: DateTime<Utc>,
    /// Pinned notices lead the strip on the home screen.
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub body: Vec<Block>,
}

impl Notice {
    pub fn is_showing(&self, now: DateTime<Utc>) -> bool {
        self.show_from <= now && now < self.show_until
    }
}

/// 政府公报, one issue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gazette {
    /// e.g. 2024年第3期.
    pub issue: String,
    pub published: NaiveDate,
    /// The titles of what the issue contains.
    #[serde(default)]
    pub contents: Vec<String>,
    /// The issue's PDF as a bundle blob path, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// 二维码 link to an online platform (e.g. 湘易办, 12345 热线).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QrLink {
    /// The URL the QR code encodes.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// 办事机构: a place where residents get things done.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Office {
    pub address: String,
    #[serde(default)]
    pub hours: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub services: Vec<String>,
}

/// 统一标识: what every kiosk of a scope looks like.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Branding {
    /// e.g. 宁乡市政务公开专区.
    pub zone_name: String,
    /// The bundle path of the logo image (PNG or SVG), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Primary colour as `#rrggbb`.
    #[serde(default = "Branding::default_primary")]
    pub primary_color: String,
    /// Accent colour as `#rrggbb`.
    #[serde(default = "Branding::default_accent")]
    pub accent_color: String,
    /// The line under the zone name, e.g. the hall's name.
    #[serde(default)]
    pub subtitle: String,
    /// 监督电话 shown in the footer.
    #[serde(default)]
    pub hotline: String,
    /// The canonical URL of an item that has no `url` of its own, as a template with
    /// `{id}` for the item id, e.g. `https://zwgk.example.gov.cn/item/{id}`; the reader's
    /// “扫码带走” QR and printouts use it. None: such items show no QR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_url: Option<String>,
    /// Where a resident follows a request online: a base such as
    /// `https://zwgk.example.gov.cn/track` (the receipt number is added as `?no=`) or a
    /// template with `{no}`. None: receipts show no QR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

impl Branding {
    fn default_primary() -> String {
        "#b71c1c".into()
    }
    fn default_accent() -> String {
        "#d4a017".into()
    }
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            zone_name: "政务公开专区".into(),
            logo: None,
            primary_color: Branding::default_primary(),
            accent_color: Branding::default_accent(),
            subtitle: String::new(),
            hotline: String::new(),
            item_url: None,
            tracking_url: None,
        }
    }
}

impl Branding {
    /// The canonical URL of item `id`: its own `url`, else the scope's template, else none.
    pub fn item_url_for(&self, id: &str, own: Option<&str>) -> Option<String> {
        own.map(str::trim).filter(|u| !u.is_empty()).map(String::from).or_else(|| {
            self.item_url
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| t.trim().replace("{id}", id))
        })
    }
}

/// A function tile on the home screen (统一服务功能).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    Policies,
    Interpretations,
    Guides,
    Catalog,
    Faqs,
    Gazettes,
    Request,
    Suggestion,
    QrServices,
    Offices,
    Notices,
}

impl Function {
    pub const ALL: [Function; 11] = [
        Function::Policies,
        Function::Interpretations,
        Function::Guides,
        Function::Catalog,
        Function::Faqs,
        Function::Gazettes,
        Function::Request,
        Function::Suggestion,
        Function::QrServices,
        Function::Offices,
        Function::Notices,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Function::Policies => "政策文件",
            Function::Interpretations => "政策解读",
            Function::Guides => "办事指南",
            Function::Catalog => "公开目录",
            Function::Faqs => "政策问答",
            Function::Gazettes => "政府公报",
            Function::Request => "依申请公开",
            Function::Suggestion => "意见建议",
            Function::QrServices => "扫码服务",
            Function::Offices => "办事机构",
            Function::Notices => "通知公告",
        }
    }

    /// The content kind a function browses, when it browses one.
    pub fn kind(self) -> Option<Kind> {
        match self {
            Function::Policies => Some(Kind::Policy),
            Function::Interpretations => Some(Kind::Interpretation),
            Function::Guides => Some(Kind::Guide),
            Function::Catalog => Some(Kind::Catalog),
            Function::Faqs => Some(Kind::Faq),
            Function::Gazettes => Some(Kind::Gazette),
            Function::QrServices => Some(Kind::QrLink),
            Function::Offices => Some(Kind::Office),
            Function::Notices => Some(Kind::Notice),
            Function::Request | Function::Suggestion => None,
        }
    }
}

/// 统一服务功能: which tiles the home screen shows, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Functions {
    pub enabled: Vec<Function>,
}

impl Default for Functions {
    fn default() -> Self {
        Functions {
            enabled: vec![
                Function::Policies,
                Function::Interpretations,
                Function::Guides,
                Function::Catalog,
                Function::Faqs,
                Function::Gazettes,
                Function::Request,
                Function::Suggestion,
                Function::QrServices,
            ],
        }
    }
}

/// 统一载体配置: device settings pushed with content. A device's local config may not
/// override these; they are the city's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceSettings {
    /// Seconds without a touch before the idle countdown starts.
    pub idle_seconds: u32,
    /// Seconds of countdown before the session is wiped.
    pub idle_countdown_seconds: u32,
    /// Seconds between health reports.
    pub health_interval_seconds: u32,
    /// Local times `HH:MM-HH:MM` during which large downloads may run; empty means any time.
    pub download_window: String,
    /// Download cap in kilobytes per second; 0 means no cap.
    pub bandwidth_kbps: u32,
    /// Most pages one print job may have.
    pub print_page_limit: u32,
    /// Screen brightness in percent, where the board can set it.
    pub brightness: u8,
    /// Local times `HH:MM-HH:MM` the screen is on; empty means always.
    pub screen_on: String,
    /// Text scale in 关怀 mode (at least 1.5).
    pub care_scale: f32,
}

impl Default for DeviceSettings {
    fn default() -> Self {
        DeviceSettings {
            idle_seconds: 90,
            idle_countdown_seconds: 10,
            health_interval_seconds: 60,
            download_window: String::new(),
            bandwidth_kbps: 0,
            print_page_limit: 20,
            brightness: 80,
            screen_on: String::new(),
            care_scale: 1.5,
        }
    }
}

/// The working-day calendar for the years the State Council has published: statutory
/// holidays (法定节假日 and the days joined to them) and 调休 make-up working days.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    /// The years this calendar covers. A date outside them is unknown, never guessed.
    pub years: Vec<i32>,
    /// Days off that would otherwise be working days (Mon–Fri holidays included; weekend
    /// days inside a holiday may be listed too).
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Saturdays or Sundays that are working days (调休上班).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

/// One group of words a resident may use for the same thing (社保 ≈ 社会保险).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SynonymGroup {
    pub terms: Vec<String>,
}

/// The 26 standard disclosure domains of 《国务院办公厅关于全面推进基层政务公开标准化规范化工作的指导意见》
/// (国办发〔2019〕54号), plus the general domains a hall needs. An item's `domain` must be
/// one of these.
pub const DOMAINS: &[&str] = &[
    "重大建设项目",
    "公共资源交易",
    "财政预决算",
    "安全生产",
    "税收管理",
    "征地补偿",
    "国有土地上房屋征收",
    "农村危房改造",
    "地震救灾",
    "生态环境",
    "公共文化服务",
    "公共法律服务",
    "扶贫",
    "救灾",
    "社会救助",
    "养老服务",
    "户籍管理",
    "涉农补贴",
    "食品药品监管",
    "城市综合执法",
    "义务教育",
    "卫生健康",
    "就业",
    "社会保险",
    "市政服务",
    "保障性住房",
    "农村集体资产管理",
    "政务公开",
    "机构职能",
];

pub fn is_known_domain(domain: &str) -> bool {
    DOMAINS.contains(&domain)
}

/// Everything one scope's bundle carries, before merging with the rest of the chain.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScopeContent {
    pub scope: crate::content::ScopeCode,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Functions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<Calendar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub synonyms: Vec<SynonymGroup>,
    /// Ids of higher-scope items this scope withdraws locally. Refused for baseline items.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ItemId>,
}
