//! The input shapes admins write (document front matter, guide and list TOML files) and
//! their conversion into model items. Unknown keys are refused, so a typo is reported
//! instead of silently dropped.

use kiosk::content::{
    Attachment, Block, Body, Disclosure, Faq, Gazette, Guide, Interpretation, Item, Kind, Material,
    Notice, Office, Policy, QrLink, QuestionAnswer, Validity,
};
use serde::Deserialize;

use super::markdown::parse_body;
use super::value::{Date, Instant, Text, Texts};

/// The metadata of a document (Markdown front matter or the TOML sidecar of a .docx).
/// Chinese keys are accepted next to the English ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocMeta {
    pub id: Text,
    #[serde(alias = "类型")]
    pub kind: String,
    #[serde(alias = "标题")]
    pub title: String,
    #[serde(default, alias = "领域")]
    pub domain: Option<String>,
    #[serde(default)]
    pub baseline: bool,
    #[serde(default, alias = "关联")]
    pub links: Texts,
    #[serde(default, alias = "链接")]
    pub url: Option<String>,
    // 政策文件
    #[serde(default, alias = "文号")]
    pub doc_number: Option<String>,
    #[serde(default, alias = "发文机关")]
    pub issuer: Option<String>,
    #[serde(default, alias = "成文日期")]
    pub written: Option<Date>,
    #[serde(default, alias = "发布日期")]
    pub published: Option<Date>,
    #[serde(default, alias = "施行日期")]
    pub effective: Option<Date>,
    #[serde(default, alias = "效力状态")]
    pub validity: Option<String>,
    #[serde(default, alias = "公开属性")]
    pub disclosure: Option<String>,
    #[serde(default, alias = "主题分类")]
    pub topics: Texts,
    #[serde(default, alias = "关键词")]
    pub keywords: Texts,
    #[serde(default, alias = "附件")]
    pub attachments: Vec<AttachmentIn>,
    // 政策解读
    #[serde(default, alias = "解读文件")]
    pub policy: Option<Text>,
    #[serde(default, alias = "解读机关")]
    pub author: Option<String>,
    // 通知公告
    #[serde(default, alias = "展示开始")]
    pub show_from: Option<Instant>,
    #[serde(default, alias = "展示结束")]
    pub show_until: Option<Instant>,
    #[serde(default, alias = "置顶")]
    pub pinned: bool,
    // 政府公报
    #[serde(default, alias = "期号")]
    pub issue: Option<String>,
    #[serde(default, alias = "目录")]
    pub contents: Vec<String>,
    #[serde(default, alias = "文件")]
    pub file: Option<String>,
}

/// An attachment as written: a file name under `files/`, or a name and a path.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AttachmentIn {
    Path(String),
    Named { name: String, path: String },
}

/// Makes a document item from its metadata and body. `list` is the body's list items, used
/// as a gazette's contents when the metadata gives none.
pub fn document_item(meta: DocMeta, body: Vec<Block>, list: Vec<String>) -> Result<Item, String> {
    let kind = Kind::parse(meta.kind.trim()).ok_or_else(|| {
        format!(
            "kind “{}” is not a document kind: use 政策文件, 政策解读, 通知公告 or 政府公报",
            meta.kind
        )
    })?;
    let label = kind.label();
    let mut misplaced: Vec<&str> = Vec::new();
    let mut check = |set: bool, name: &'static str, allowed: &[Kind]| {
        if set && !allowed.contains(&kind) {
            misplaced.push(name);
        }
    };
    check(meta.doc_number.is_some(), "doc_number (文号)", &[Kind::Policy]);
    check(meta.issuer.is_some(), "issuer (发文机关)", &[Kind::Policy]);
    check(meta.written.is_some(), "written (成文日期)", &[Kind::Policy]);
    check(meta.effective.is_some(), "effective (施行日期)", &[Kind::Policy]);
    check(meta.validity.is_some(), "validity (效力状态)", &[Kind::Policy]);
    check(meta.disclosure.is_some(), "disclosure (公开属性)", &[Kind::Policy]);
    check(!meta.topics.0.is_empty(), "topics (主题分类)", &[Kind::Policy]);
    check(!meta.attachments.is_empty(), "attachments (附件)", &[Kind::Policy]);
    check(meta.policy.is_some(), "policy (解读文件)", &[Kind::Interpretation]);
    check(meta.author.is_some(), "author (解读机关)", &[Kind::Interpretation]);
    check(
        meta.show_from.is_some() || meta.show_until.is_some(),
        "show_from/show_until",
        &[Kind::Notice],
    );
    check(meta.pinned, "pinned (置顶)", &[Kind::Notice]);
    check(meta.issue.is_some(), "issue (期号)", &[Kind::Gazette]);
    check(!meta.contents.is_empty(), "contents (目录)", &[Kind::Gazette]);
    check(meta.file.is_some(), "file (文件)", &[Kind::Gazette]);
    if !misplaced.is_empty() {
        return Err(format!(
            "{} do not apply to a {label}: remove them or fix `kind`",
            misplaced.join(", ")
        ));
    }
    let need = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty()).ok_or(format!("a {label} needs `{name}`"))
    };
    if kind != Kind::Policy && !meta.keywords.0.is_empty() {
        return Err(format!("keywords (关键词) do not apply to a {label}"));
    }
    let published = meta.published.map(|d| d.0);
    let body = match kind {
        Kind::Policy => Body::Policy(Policy {
            doc_number: meta.doc_number,
            issuer: need(meta.issuer, "issuer (发文机关)")?,
            written: meta.written.map(|d| d.0),
            published,
            effective: meta.effective.map(|d| d.0),
            validity: match meta.validity {
                Some(v) => Validity::parse(&v)
                    .ok_or(format!("效力状态 “{v}” is not one of 有效、失效、废止、已修订"))?,
                None => Validity::Valid,
            },
            disclosure: match meta.disclosure {
                Some(v) => Disclosure::parse(&v)
                    .ok_or(format!("公开属性 “{v}” is not 主动公开 or 依申请公开"))?,
                None => Disclosure::Proactive,
            },
            topics: meta.topics.0,
            keywords: meta.keywords.0,
            body,
            attachments: meta
                .attachments
                .into_iter()
                .map(|a| match a {
                    AttachmentIn::Path(path) => Attachment { name: file_label(&path), path },
                    AttachmentIn::Named { name, path } => Attachment { name, path },
                })
                .collect(),
        }),
        Kind::Interpretation => Body::Interpretation(Interpretation {
            policy: need(
                meta.policy.map(|t| t.0),
                "policy (the id of the 政策文件 it interprets)",
            )?,
            author: meta.author,
            published,
            body,
        }),
        Kind::Notice => {
            let (Some(from), Some(until)) = (meta.show_from, meta.show_until) else {
                return Err(
                    "a 通知公告 needs `show_from` and `show_until` (its display window)".into()
                );
            };
            if until.0 <= from.0 {
                return Err("show_until is not after show_from: the notice would never show".into());
            }
            let published = published
                .unwrap_or_else(|| from.0.with_timezone(&super::value::cst()).date_naive());
            Body::Notice(Notice {
                published,
                show_from: from.0,
                show_until: until.0,
                pinned: meta.pinned,
                body,
            })
        }
        Kind::Gazette => Body::Gazette(Gazette {
            issue: need(meta.issue, "issue (期号, e.g. 2024年第3期)")?,
            published: published.ok_or("a 政府公报 needs `published` (发布日期)")?,
            contents: if meta.contents.is_empty() { list } else { meta.contents },
            file: meta.file,
        }),
        _ => {
            return Err(format!(
            "a {label} is written in a TOML file, not as a document: see the source folder layout"
        ))
        }
    };
    Ok(Item {
        id: meta.id.0,
        title: meta.title,
        domain: meta.domain,
        baseline: meta.baseline,
        links: meta.links.0,
        url: meta.url,
        body,
    })
}

/// A readable name for an attachment given only as a path: its file name.
fn file_label(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Declares an input struct with the fields every item has plus the given ones.
macro_rules! item_input {
    ($name:ident { $($(#[$m:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub id: Text,
            #[serde(default)]
            pub title: Option<String>,
            #[serde(default)]
            pub domain: Option<String>,
            #[serde(default)]
            pub baseline: bool,
            #[serde(default)]
            pub links: Texts,
            #[serde(default)]
            pub url: Option<String>,
            $($(#[$m])* pub $field: $ty,)*
        }
    };
}

/// Builds the item from the shared fields of an input struct.
macro_rules! item_from {
    ($input:ident, $title:expr, $body:expr) => {
        Item {
            id: $input.id.0,
            title: $input.title.unwrap_or_else(|| $title),
            domain: $input.domain,
            baseline: $input.baseline,
            links: $input.links.0,
            url: $input.url,
            body: $body,
        }
    };
}

/// A material as written: a name, or a name and a note.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MaterialIn {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        note: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaIn {
    pub question: String,
    pub answer: String,
}

item_input!(GuideIn {
    #[serde(default)] matter: Option<String>,
    authority: String,
    #[serde(default)] location: String,
    #[serde(default)] hours: String,
    #[serde(default)] phone: String,
    #[serde(default)] materials: Vec<MaterialIn>,
    #[serde(default)] steps: Vec<String>,
    #[serde(default)] time_limit: String,
    #[serde(default)] fee: String,
    #[serde(default)] basis: Vec<String>,
    #[serde(default)] faqs: Vec<QaIn>,
    #[serde(default)] online_url: Option<String>,
});

impl GuideIn {
    pub fn into_item(self) -> Result<Item, String> {
        let g = self;
        let matter = match (&g.matter, &g.title) {
            (Some(m), _) => m.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => return Err("a 办事指南 needs `title` or `matter` (事项名称)".into()),
        };
        let body = Body::Guide(Guide {
            matter: matter.clone(),
            authority: g.authority,
            location: g.location,
            hours: g.hours,
            phone: g.phone,
            materials: g
                .materials
                .into_iter()
                .map(|m| match m {
                    MaterialIn::Name(name) => Material { name, note: String::new() },
                    MaterialIn::Full { name, note } => Material { name, note },
                })
                .collect(),
            steps: g.steps,
            time_limit: g.time_limit,
            fee: g.fee,
            basis: g.basis,
            faqs: g
                .faqs
                .into_iter()
                .map(|q| QuestionAnswer { question: q.question, answer: q.answer })
                .collect(),
            online_url: g.online_url,
        });
        Ok(Item {
            id: g.id.0,
            title: g.title.unwrap_or(matter),
            domain: g.domain,
            baseline: g.baseline,
            links: g.links.0,
            url: g.url,
            body,
        })
    }
}

item_input!(FaqIn {
    question: String,
    answer: String,
    #[serde(default)] published: Option<Date>,
});

impl FaqIn {
    pub fn into_item(self) -> Result<Item, String> {
        let f = self;
        let body = Body::Faq(Faq {
            question: f.question.clone(),
            answer: f.answer,
            published: f.published.map(|d| d.0),
        });
        Ok(item_from!(f, f.question.clone(), body))
    }
}

item_input!(NoticeIn {
    #[serde(default)] published: Option<Date>,
    show_from: Instant,
    show_until: Instant,
    #[serde(default)] pinned: bool,
    /// Markdown text.
    #[serde(default)] body: String,
});

impl NoticeIn {
    pub fn into_item(self) -> Result<Item, String> {
        let n = self;
        if n.show_until.0 <= n.show_from.0 {
            return Err("show_until is not after show_from: the notice would never show".into());
        }
        let title = n.title.clone().ok_or("a 通知公告 needs `title`")?;
        let published = n
            .published
            .map(|d| d.0)
            .unwrap_or_else(|| n.show_from.0.with_timezone(&super::value::cst()).date_naive());
        let body = Body::Notice(Notice {
            published,
            show_from: n.show_from.0,
            show_until: n.show_until.0,
            pinned: n.pinned,
            body: parse_body(&n.body),
        });
        Ok(item_from!(n, title, body))
    }
}

item_input!(QrIn {
    target: String,
    #[serde(default)] description: Option<String>,
});

impl QrIn {
    pub fn into_item(self) -> Result<Item, String> {
        let q = self;
        if !(q.target.starts_with("https://")
            || q.target.starts_with("http://")
            || q.target.starts_with("weixin://"))
        {
            return Err(format!("target “{}” is not a web address (https://…)", q.target));
        }
        let title = q.title.clone().ok_or("a 二维码 link needs `title`")?;
        let body = Body::QrLink(QrLink { target: q.target, description: q.description });
        Ok(item_from!(q, title, body))
    }
}

item_input!(OfficeIn {
    address: String,
    #[serde(default)] hours: String,
    #[serde(default)] phone: String,
    #[serde(default)] services: Vec<String>,
});

impl OfficeIn {
    pub fn into_item(self) -> Result<Item, String> {
        let o = self;
        let title = o.title.clone().ok_or("a 办事机构 needs `title` (its name)")?;
        let body = Body::Office(Office {
            address: o.address,
            hours: o.hours,
            phone: o.phone,
            services: o.services,
        });
        Ok(item_from!(o, title, body))
    }
}

item_input!(GazetteIn {
    issue: String,
    published: Date,
    #[serde(default)] contents: Vec<String>,
    #[serde(default)] file: Option<String>,
});

impl GazetteIn {
    pub fn into_item(self) -> Result<Item, String> {
        let g = self;
        let title = format!("政府公报 {}", g.issue);
        let body = Body::Gazette(Gazette {
            issue: g.issue,
            published: g.published.0,
            contents: g.contents,
            file: g.file,
        });
        Ok(item_from!(g, title, body))
    }
}
