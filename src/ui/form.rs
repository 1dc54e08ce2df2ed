//! The fields of the 依申请公开 and 意见建议 forms as the screen lays them out, and the
//! mapping between the screen's values and the requests module's forms, whose validation
//! gives the messages shown next to each field. Plain data; no Slint.

use crate::content::ScopeCode;
use crate::requests::{
    Carrier, DisclosureRequest, FieldError, IdType, Personal, ReceiveBy, Suggestion,
    SATISFACTION_LABELS, SUGGESTION_TOPICS,
};

use super::session::FormKind;

/// One field of a form. `key` is the requests module's `Field::as_str` name, so its
/// validation messages land next to the right widget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub key: &'static str,
    pub label: &'static str,
    pub placeholder: &'static str,
    pub required: bool,
    pub multiline: bool,
    /// A choice field: the resident taps one of these.
    pub choices: &'static [&'static str],
}

const fn text(
    key: &'static str,
    label: &'static str,
    placeholder: &'static str,
    required: bool,
) -> FieldSpec {
    FieldSpec { key, label, placeholder, required, multiline: false, choices: &[] }
}

const fn long(
    key: &'static str,
    label: &'static str,
    placeholder: &'static str,
    required: bool,
) -> FieldSpec {
    FieldSpec { key, label, placeholder, required, multiline: true, choices: &[] }
}

const fn choice(
    key: &'static str,
    label: &'static str,
    required: bool,
    choices: &'static [&'static str],
) -> FieldSpec {
    FieldSpec { key, label, placeholder: "", required, multiline: false, choices }
}

const ID_TYPES: &[&str] = &[
    "居民身份证",
    "港澳居民来往内地通行证",
    "台湾居民来往大陆通行证",
    "护照",
    "外国人永久居留身份证",
    "其他有效身份证件",
];
const CARRIERS: &[&str] = &["纸质", "电子文档"];
const RECEIVE: &[&str] = &["当面领取", "邮寄", "电子邮件"];
const ASSISTED: &[&str] = &["本人填写", "工作人员代填"];
const CONSENT: &[&str] = &["我已阅读并同意上述说明"];

/// 《政府信息公开条例》第二十九条: who asks, how to reach them, what they ask for, how they
/// want it delivered; a 代填 switch and the consent to the personal-information notice.
pub const REQUEST_FIELDS: &[FieldSpec] = &[
    text("name", "申请人姓名", "请输入姓名", true),
    choice("id_type", "证件类型", true, ID_TYPES),
    text("id_number", "证件号码", "请输入证件号码", true),
    text("phone", "联系电话", "11位手机号码或带区号的固定电话", true),
    text("address", "通信地址", "邮寄时必填", false),
    text("email", "电子邮箱", "以电子邮件获取时必填", false),
    text("info_name", "所需信息的名称", "例如：宁乡市2024年城乡低保标准", false),
    text("info_doc_number", "所需信息的文号", "例如：宁政发〔2024〕3号（知道时填写）", false),
    long("info_description", "所需信息的内容描述", "名称、文号不清楚时，请尽量描述", false),
    text("purpose", "用途（可不填）", "", false),
    choice("carrier", "提供载体形式", true, CARRIERS),
    choice("receive", "获取信息方式", true, RECEIVE),
    choice("assisted", "填写方式", true, ASSISTED),
    text("assistant", "代填人（工作人员姓名或工号）", "由工作人员代填时必填", false),
    choice("consent", "个人信息说明", true, CONSENT),
];

/// 意见建议: topic, text, optional contact and a 满意度 rating.
pub const SUGGESTION_FIELDS: &[FieldSpec] = &[
    choice("topic", "主题", true, SUGGESTION_TOPICS),
    long("text", "意见或建议", "请写下您的意见或建议", true),
    text("contact", "联系方式（可不填）", "手机号码或电子邮箱", false),
    choice("satisfaction", "满意度", true, &SATISFACTION_LABELS),
    choice("consent", "个人信息说明（留联系方式时）", false, CONSENT),
];

pub fn fields(kind: FormKind) -> &'static [FieldSpec] {
    match kind {
        FormKind::Request => REQUEST_FIELDS,
        FormKind::Suggestion => SUGGESTION_FIELDS,
    }
}

pub fn title(kind: FormKind) -> &'static str {
    match kind {
        FormKind::Request => "依申请公开",
        FormKind::Suggestion => "意见建议",
    }
}

pub fn intro(kind: FormKind) -> &'static str {
    match kind {
        FormKind::Request => "根据《中华人民共和国政府信息公开条例》第二十九条，请填写以下信息。所需信息的名称、文号、描述至少填写一项。",
        FormKind::Suggestion => "欢迎对政务公开和政务服务提出意见建议，我们会认真研究办理。",
    }
}

/// The starting values: choices with a natural default start at it, the rest empty.
pub fn initial_values(kind: FormKind) -> Vec<String> {
    fields(kind)
        .iter()
        .map(|f| match f.key {
            "id_type" | "carrier" | "receive" | "assisted" => {
                f.choices.first().copied().unwrap_or_default().to_string()
            }
            _ => String::new(),
        })
        .collect()
}

fn get<'a>(kind: FormKind, values: &'a [String], key: &str) -> &'a str {
    fields(kind)
        .iter()
        .position(|f| f.key == key)
        .and_then(|i| values.get(i))
        .map(String::as_str)
        .unwrap_or_default()
}

fn pick<T: Copy + Default>(all: &[T], labels: &[&str], value: &str) -> T {
    labels.iter().position(|l| *l == value).and_then(|i| all.get(i).copied()).unwrap_or_default()
}

/// The form as the requests module takes it. The caller wipes it after use.
pub fn personal(kind: FormKind, values: &[String]) -> Personal {
    let v = |key: &str| get(kind, values, key).trim().to_string();
    match kind {
        FormKind::Request => Personal::Request(DisclosureRequest {
            name: v("name"),
            id_type: pick(&IdType::ALL, ID_TYPES, &v("id_type")),
            id_number: v("id_number"),
            phone: v("phone"),
            address: v("address"),
            email: v("email"),
            info_name: v("info_name"),
            info_doc_number: v("info_doc_number"),
            info_description: v("info_description"),
            purpose: v("purpose"),
            carrier: pick(&Carrier::ALL, CARRIERS, &v("carrier")),
            receive: pick(&ReceiveBy::ALL, RECEIVE, &v("receive")),
            assisted: v("assisted") == ASSISTED[1],
            assistant: v("assistant"),
            consent: !v("consent").is_empty(),
        }),
        FormKind::Suggestion => Personal::Suggestion(Suggestion {
            topic: v("topic"),
            text: v("text"),
            contact: v("contact"),
            satisfaction: SATISFACTION_LABELS
                .iter()
                .position(|l| *l == v("satisfaction"))
                .and_then(|i| u8::try_from(i + 1).ok())
                .unwrap_or(0),
            consent: !v("consent").is_empty(),
        }),
    }
}

/// Every field's message (empty when fine), in field order. Validation is the requests
/// module's; `today` is for the ID number's birth date.
pub fn check(kind: FormKind, values: &[String], today: chrono::NaiveDate) -> Vec<String> {
    let mut form = personal(kind, values);
    let errors = match &form {
        Personal::Request(r) => r.validate(today),
        Personal::Suggestion(s) => s.validate(),
    };
    wipe(&mut form);
    messages(kind, &errors)
}

/// Places each error next to its field; an error for a field the screen does not have goes
/// to the first field so it is never lost.
pub fn messages(kind: FormKind, errors: &[FieldError]) -> Vec<String> {
    let specs = fields(kind);
    let mut out = vec![String::new(); specs.len()];
    for e in errors {
        // 名称/文号/描述 share one rule (“至少填写一项”), reported on the description.
        let key = e.field.as_str();
        let at = specs.iter().position(|f| f.key == key).unwrap_or(0);
        if out[at].is_empty() {
            out[at] = e.message.clone();
        }
    }
    out
}

/// Clears a form's personal data in memory.
pub fn wipe(form: &mut Personal) {
    match form {
        Personal::Request(r) => r.wipe(),
        Personal::Suggestion(s) => s.wipe(),
    }
}

/// The receipt station of this kiosk.
pub fn station(scope: &ScopeCode, device_id: &str) -> String {
    crate::requests::station_code(scope, device_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")
    }

    #[test]
    fn an_empty_suggestion_names_what_is_missing_next_to_the_field() {
        let values = initial_values(FormKind::Suggestion);
        let errors = check(FormKind::Suggestion, &values, today());
        assert!(!errors[0].is_empty(), "topic is required: {errors:?}");
        assert!(!errors[1].is_empty(), "text is required");
        assert!(errors[2].is_empty(), "contact is optional");
    }

    #[test]
    fn a_wrong_id_check_digit_is_reported_on_the_id_field() {
        let mut values = initial_values(FormKind::Request);
        let set = |values: &mut Vec<String>, key: &str, v: &str| {
            let i = REQUEST_FIELDS.iter().position(|f| f.key == key).expect("field");
            values[i] = v.to_string();
        };
        set(&mut values, "name", "张三");
        set(&mut values, "id_number", "110105194912310021");
        set(&mut values, "phone", "13800138000");
        set(&mut values, "info_name", "低保标准");
        set(&mut values, "consent", CONSENT[0]);
        let errors = check(FormKind::Request, &values, today());
        let at = REQUEST_FIELDS.iter().position(|f| f.key == "id_number").expect("field");
        assert!(!errors[at].is_empty(), "{errors:?}");
        set(&mut values, "id_number", "11010519491231002X");
        let errors = check(FormKind::Request, &values, today());
        assert!(errors.iter().all(String::is_empty), "{errors:?}");
    }

    #[test]
    fn choices_map_to_the_request_types() {
        let mut values = initial_values(FormKind::Request);
        values[1] = "护照".into();
        let Personal::Request(r) = personal(FormKind::Request, &values) else {
            panic!("a request")
        };
        assert_eq!(r.id_type, IdType::Passport);
        assert_eq!(r.receive, ReceiveBy::InPerson);
        assert!(!r.assisted);
    }
}
