//! The fields of the 依申请公开 and 意见建议 forms and the checks a resident sees next to
//! them, as plain data. Sealing and sending belong to the requests module.

use super::session::FormKind;

/// One field of a form.
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

const fn text(key: &'static str, label: &'static str, placeholder: &'static str, required: bool) -> FieldSpec {
    FieldSpec { key, label, placeholder, required, multiline: false, choices: &[] }
}

const fn long(key: &'static str, label: &'static str, placeholder: &'static str, required: bool) -> FieldSpec {
    FieldSpec { key, label, placeholder, required, multiline: true, choices: &[] }
}

const fn choice(key: &'static str, label: &'static str, required: bool, choices: &'static [&'static str]) -> FieldSpec {
    FieldSpec { key, label, placeholder: "", required, multiline: false, choices }
}

/// 《政府信息公开条例》第二十九条: who asks, how to reach them, what they ask for, how they
/// want it delivered.
pub const REQUEST_FIELDS: &[FieldSpec] = &[
    choice("applicant_type", "申请人类型", true, &["公民", "法人或其他组织"]),
    text("name", "申请人姓名（或单位名称）", "请输入姓名", true),
    choice("id_type", "证件类型", true, &["居民身份证", "护照", "港澳台居民居住证", "统一社会信用代码"]),
    text("id_number", "证件号码", "请输入证件号码", true),
    text("phone", "联系电话", "11位手机号码或固定电话", true),
    text("address", "通信地址", "邮寄纸质答复时需要", false),
    text("email", "电子邮箱", "以电子邮件答复时需要", false),
    long("description", "所需政府信息的名称、文号或描述", "例如：宁乡市2024年城乡低保标准的文件", true),
    text("purpose", "用途（可不填）", "", false),
    choice("delivery", "获取信息的方式", true, &["纸质", "电子邮件", "自行领取"]),
    choice("assisted", "是否由工作人员代填", false, &["本人填写", "工作人员代填"]),
];

/// 意见建议: topic, text, optional contact and a 满意度 rating.
pub const SUGGESTION_FIELDS: &[FieldSpec] = &[
    text("topic", "主题", "例如：办事指南、服务态度", true),
    long("content", "意见或建议", "请写下您的意见或建议", true),
    text("contact", "联系方式（可不填）", "手机号码或邮箱", false),
    choice("rating", "满意度", true, &["非常满意", "满意", "基本满意", "不满意"]),
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
        FormKind::Request => "根据《中华人民共和国政府信息公开条例》第二十九条，请填写以下信息。带“必填”的项目必须填写。",
        FormKind::Suggestion => "欢迎对政务公开和政务服务提出意见建议，我们会认真研究办理。",
    }
}

/// The starting values: a choice field starts at its first choice when it has a natural
/// default (who fills in the form), otherwise empty.
pub fn initial_values(kind: FormKind) -> Vec<String> {
    fields(kind)
        .iter()
        .map(|f| if f.key == "assisted" { f.choices.first().copied().unwrap_or_default().to_string() } else { String::new() })
        .collect()
}

/// The plain-Chinese problem with each field (empty when fine).
pub fn check(kind: FormKind, values: &[String]) -> Vec<String> {
    fields(kind)
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let v = values.get(i).map(|s| s.trim()).unwrap_or_default();
            if f.required && v.is_empty() {
                return if f.choices.is_empty() { format!("请填写{}", short(f.label)) } else { format!("请选择{}", short(f.label)) };
            }
            if v.is_empty() {
                return String::new();
            }
            match f.key {
                "phone" if !phone_ok(v) => "请填写11位手机号码，或带区号的固定电话".into(),
                "email" if !(v.contains('@') && v.contains('.')) => "电子邮箱格式不对，例如 name@example.com".into(),
                "id_number" if id_type_is_resident_card(kind, values) && !resident_id_ok(v) => {
                    "身份证号码不正确：应为18位，请核对最后一位校验码".into()
                }
                _ => String::new(),
            }
        })
        .collect()
}

fn short(label: &str) -> &str {
    label.split(['（', '(']).next().unwrap_or(label)
}

fn phone_ok(v: &str) -> bool {
    let digits: String = v.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    digits.chars().all(|c| c.is_ascii_digit())
        && ((digits.len() == 11 && digits.starts_with('1')) || (10..=12).contains(&digits.len()) && digits.starts_with('0'))
}

fn id_type_is_resident_card(kind: FormKind, values: &[String]) -> bool {
    fields(kind).iter().position(|f| f.key == "id_type").and_then(|i| values.get(i)).is_some_and(|v| v == "居民身份证")
}

/// GB 11643: 17 digits and a check character computed from them.
pub fn resident_id_ok(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let chars: Vec<char> = id.trim().chars().map(|c| c.to_ascii_uppercase()).collect();
    if chars.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (c, w) in chars.iter().zip(WEIGHTS) {
        match c.to_digit(10) {
            Some(d) => sum += d * w,
            None => return false,
        }
    }
    CHECK[(sum % 11) as usize] == chars[17]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields_are_named_in_plain_chinese() {
        let values = initial_values(FormKind::Suggestion);
        let errors = check(FormKind::Suggestion, &values);
        assert_eq!(errors[0], "请填写主题");
        assert_eq!(errors[3], "请选择满意度");
        assert_eq!(errors[2], "", "optional contact may stay empty");
    }

    #[test]
    fn resident_id_check_digit() {
        assert!(resident_id_ok("11010519491231002X"));
        assert!(!resident_id_ok("110105194912310021"));
        assert!(!resident_id_ok("1101051949123100"));
    }

    #[test]
    fn phone_numbers() {
        assert!(phone_ok("13800138000"));
        assert!(phone_ok("0731-87654321"));
        assert!(!phone_ok("1380013"));
    }
}
