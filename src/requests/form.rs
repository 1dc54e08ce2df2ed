//! The two forms a resident fills on the kiosk — 依申请公开 (《政府信息公开条例》第二十九条)
//! and 意见建议 — and their validation, which answers with one plain-Chinese message per
//! field, shown next to that field.
//!
//! The form structs hold what the resident typed, as typed. Their `Debug` prints no
//! values, so a stray `{:?}` in a log or a crash report cannot leak a name or an ID
//! number, and `wipe` overwrites the text in memory (idle timeout, after sending). They
//! do not wipe on drop: a `Drop` impl would forbid the `..form` update syntax the UI
//! adapters build forms with.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::check;

/// A form field, for placing a message next to its widget. `as_str` is the name the UI
/// adapter matches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    IdType,
    IdNumber,
    Phone,
    Address,
    Email,
    InfoName,
    InfoDocNumber,
    InfoDescription,
    Purpose,
    Carrier,
    Receive,
    Assistant,
    Consent,
    Topic,
    Text,
    Contact,
    Satisfaction,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::IdType => "id_type",
            Field::IdNumber => "id_number",
            Field::Phone => "phone",
            Field::Address => "address",
            Field::Email => "email",
            Field::InfoName => "info_name",
            Field::InfoDocNumber => "info_doc_number",
            Field::InfoDescription => "info_description",
            Field::Purpose => "purpose",
            Field::Carrier => "carrier",
            Field::Receive => "receive",
            Field::Assistant => "assistant",
            Field::Consent => "consent",
            Field::Topic => "topic",
            Field::Text => "text",
            Field::Contact => "contact",
            Field::Satisfaction => "satisfaction",
        }
    }
}

/// What is wrong with one field, in words a resident understands. Never contains the
/// value typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub message: String,
}

fn err(field: Field, message: &str) -> FieldError {
    FieldError { field, message: message.to_string() }
}

/// The message for `field` among `errors`, if any: what the UI shows under a widget.
pub fn message_for(errors: &[FieldError], field: Field) -> Option<&str> {
    errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
}

/// 身份证件类型.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// 居民身份证 (checked against GB 11643).
    #[default]
    ResidentIdCard,
    /// 港澳居民来往内地通行证
    HkMacaoPermit,
    /// 台湾居民来往大陆通行证
    TaiwanPermit,
    /// 护照
    Passport,
    /// 外国人永久居留身份证
    ForeignPermanentResident,
    /// 其他有效身份证件
    Other,
}

impl IdType {
    pub const ALL: [IdType; 6] = [
        IdType::ResidentIdCard,
        IdType::HkMacaoPermit,
        IdType::TaiwanPermit,
        IdType::Passport,
        IdType::ForeignPermanentResident,
        IdType::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            IdType::ResidentIdCard => "居民身份证",
            IdType::HkMacaoPermit => "港澳居民来往内地通行证",
            IdType::TaiwanPermit => "台湾居民来往大陆通行证",
            IdType::Passport => "护照",
            IdType::ForeignPermanentResident => "外国人永久居留身份证",
            IdType::Other => "其他有效身份证件",
        }
    }
}

/// 所需信息的指定提供载体形式.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// 纸质
    #[default]
    Paper,
    /// 电子文档
    Electronic,
}

impl Carrier {
    pub const ALL: [Carrier; 2] = [Carrier::Paper, Carrier::Electronic];

    pub fn label(self) -> &'static str {
        match self {
            Carrier::Paper => "纸质",
            Carrier::Electronic => "电子文档",
        }
    }
}

/// 获取信息的方式.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveBy {
    /// 当面领取
    #[default]
    InPerson,
    /// 邮寄
    Post,
    /// 电子邮件
    Email,
}

impl ReceiveBy {
    pub const ALL: [ReceiveBy; 3] = [ReceiveBy::InPerson, ReceiveBy::Post, ReceiveBy::Email];

    pub fn label(self) -> &'static str {
        match self {
            ReceiveBy::InPerson => "当面领取",
            ReceiveBy::Post => "邮寄",
            ReceiveBy::Email => "电子邮件",
        }
    }
}

/// The notice shown before a resident sends a form; the consent box confirms it.
pub const CONSENT_NOTICE: &str = "您填写的姓名、证件号码和联系方式仅用于办理本次申请并与您联系。\
信息在本机加密后直接发送至受理机关，本机无法读取，也不会保存明文；受理机关收到后，本机的加密副本即被删除。";

/// Longest free text a field takes, in characters: about a screen of writing.
const MAX_TEXT: usize = 2000;
/// Longest single-line field.
const MAX_LINE: usize = 100;

/// A 政府信息公开申请 (《政府信息公开条例》第二十九条).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureRequest {
    /// 申请人姓名.
    pub name: String,
    /// 身份证件类型.
    pub id_type: IdType,
    /// 证件号码.
    pub id_number: String,
    /// 联系电话.
    pub phone: String,
    /// 通信地址 (needed for 邮寄).
    pub address: String,
    /// 电子邮箱 (needed for 电子邮件).
    pub email: String,
    /// 所需信息的名称.
    pub info_name: String,
    /// 所需信息的文号.
    pub info_doc_number: String,
    /// 所需信息的内容描述.
    pub info_description: String,
    /// 用途 (optional: the law does not require a reason).
    pub purpose: String,
    /// 指定提供载体形式.
    pub carrier: Carrier,
    /// 获取信息方式.
    pub receive: ReceiveBy,
    /// 代填: a member of staff filled the form for the resident.
    pub assisted: bool,
    /// 代填人 (staff name or number), required when `assisted`.
    pub assistant: String,
    /// The resident confirmed [`CONSENT_NOTICE`].
    pub consent: bool,
}

impl DisclosureRequest {
    /// Every problem with the form, at most one per field, in the order of the form.
    /// `today` is the kiosk's date, for the ID number's birth date.
    pub fn validate(&self, today: NaiveDate) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.push(err(Field::Name, "请填写申请人姓名"));
        } else if name.chars().count() > 50 {
            errors.push(err(Field::Name, "姓名过长，请核对"));
        }
        let id = self.id_number.trim();
        if id.is_empty() {
            errors.push(err(Field::IdNumber, "请填写证件号码"));
        } else if self.id_type == IdType::ResidentIdCard {
            if let Err(m) = check::resident_id(id, today) {
                errors.push(err(Field::IdNumber, m));
            }
        } else if id.chars().count() > 40
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.push(err(Field::IdNumber, "证件号码只能包含字母、数字和短横线，请核对"));
        }
        let (phone, address, email) = (self.phone.trim(), self.address.trim(), self.email.trim());
        if phone.is_empty() && address.is_empty() && email.is_empty() {
            errors.push(err(Field::Phone, "请至少留一种联系方式：电话、通信地址或电子邮箱"));
        }
        if !phone.is_empty() {
            if let Err(m) = check::phone(phone) {
                errors.push(err(Field::Phone, m));
            }
        }
        if address.is_empty() && self.receive == ReceiveBy::Post {
            errors.push(err(Field::Address, "选择邮寄时，请填写通信地址"));
        } else if address.chars().count() > MAX_LINE {
            errors.push(err(Field::Address, "通信地址过长，请精简到100字以内"));
        }
        if email.is_empty() && self.receive == ReceiveBy::Email {
            errors.push(err(Field::Email, "选择电子邮件时，请填写电子邮箱"));
        } else if !email.is_empty() {
            if let Err(m) = check::email(email) {
                errors.push(err(Field::Email, m));
            }
        }
        if self.info_name.trim().is_empty()
            && self.info_doc_number.trim().is_empty()
            && self.info_description.trim().is_empty()
        {
            errors.push(err(Field::InfoName, "请填写所需信息的名称、文号或内容描述（至少一项）"));
        }
        if self.info_name.chars().count() > MAX_LINE {
            errors.push(err(Field::InfoName, "信息名称过长，较长的内容请写在“内容描述”中"));
        }
        if self.info_description.chars().count() > MAX_TEXT {
            errors.push(err(Field::InfoDescription, "内容描述过长，请精简到2000字以内"));
        }
        if self.purpose.chars().count() > MAX_TEXT {
            errors.push(err(Field::Purpose, "用途说明过长，请精简到2000字以内"));
        }
        if self.carrier == Carrier::Paper && self.receive == ReceiveBy::Email {
            errors.push(err(
                Field::Receive,
                "纸质材料不能通过电子邮件发送，请选择当面领取或邮寄，或改选电子文档",
            ));
        }
        if self.assisted && self.assistant.trim().is_empty() {
            errors.push(err(Field::Assistant, "工作人员代填时，请填写代填人姓名或工号"));
        }
        if !self.consent {
            errors.push(err(Field::Consent, "请阅读个人信息说明并勾选同意后提交"));
        }
        errors
    }

    /// Clears every field, for the idle timeout and after sending.
    pub fn wipe(&mut self) {
        for s in self.texts_mut() {
            s.zeroize();
        }
        *self = DisclosureRequest::default();
    }

    fn texts_mut(&mut self) -> [&mut String; 10] {
        [
            &mut self.name,
            &mut self.id_number,
            &mut self.phone,
            &mut self.address,
            &mut self.email,
            &mut self.info_name,
            &mut self.info_doc_number,
            &mut self.info_description,
            &mut self.purpose,
            &mut self.assistant,
        ]
    }
}

impl fmt::Debug for DisclosureRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DisclosureRequest { <personal data withheld> }")
    }
}

/// An 意见建议 with a 满意度 rating.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// 主题, e.g. 服务态度, 办事效率, 公开内容, 设施环境, 其他.
    pub topic: String,
    /// 意见建议内容.
    pub text: String,
    /// 联系方式 (optional): a phone number or an e-mail address.
    pub contact: String,
    /// 满意度, 1 (很不满意) to 5 (很满意); 0 until the resident picks one.
    pub satisfaction: u8,
    /// Required only when a contact is given: then the form holds personal data.
    pub consent: bool,
}

/// The topics offered for an 意见建议.
pub const SUGGESTION_TOPICS: &[&str] = &["公开内容", "服务态度", "办事效率", "设施环境", "其他"];

/// The words under each star of the 满意度 rating, 1 to 5.
pub const SATISFACTION_LABELS: [&str; 5] = ["很不满意", "不满意", "一般", "满意", "很满意"];

impl Suggestion {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let topic = self.topic.trim();
        if topic.is_empty() {
            errors.push(err(Field::Topic, "请选择意见建议的主题"));
        } else if topic.chars().count() > 50 {
            errors.push(err(Field::Topic, "主题过长，请精简到50字以内"));
        }
        let text = self.text.trim();
        if text.is_empty() {
            errors.push(err(Field::Text, "请填写您的意见或建议"));
        } else if text.chars().count() > MAX_TEXT {
            errors.push(err(Field::Text, "内容过长，请精简到2000字以内"));
        }
        let contact = self.contact.trim();
        if !contact.is_empty() {
            let ok =
                if contact.contains('@') { check::email(contact) } else { check::phone(contact) };
            if ok.is_err() {
                errors.push(err(
                    Field::Contact,
                    "联系方式请填写手机号码、带区号的固定电话或电子邮箱，也可以不填",
                ));
            }
            if !self.consent {
                errors.push(err(Field::Consent, "留下联系方式时，请阅读个人信息说明并勾选同意"));
            }
        }
        if !(1..=5).contains(&self.satisfaction) {
            errors.push(err(Field::Satisfaction, "请为本次服务选择满意度（1至5星）"));
        }
        errors
    }

    /// Clears every field, for the idle timeout and after sending.
    pub fn wipe(&mut self) {
        self.topic.zeroize();
        self.text.zeroize();
        self.contact.zeroize();
        *self = Suggestion::default();
    }
}

impl fmt::Debug for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Suggestion {{ satisfaction: {}, <text and contact withheld> }}",
            self.satisfaction
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")
    }

    pub(crate) fn good_request() -> DisclosureRequest {
        DisclosureRequest {
            name: "张三".into(),
            id_number: "11010519491231002X".into(),
            phone: "13800138000".into(),
            info_name: "宁乡市2025年城乡低保资金发放明细".into(),
            consent: true,
            ..DisclosureRequest::default()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<Field> {
        errors.iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_complete_request_passes() {
        assert_eq!(good_request().validate(today()), vec![]);
    }

    #[test]
    fn an_empty_request_names_every_missing_field() {
        let errors = DisclosureRequest::default().validate(today());
        assert_eq!(
            fields(&errors),
            vec![Field::Name, Field::IdNumber, Field::Phone, Field::InfoName, Field::Consent]
        );
        assert_eq!(message_for(&errors, Field::Name), Some("请填写申请人姓名"));
        assert_eq!(
            message_for(&errors, Field::Consent),
            Some("请阅读个人信息说明并勾选同意后提交")
        );
    }

    #[test]
    fn the_receiving_method_needs_its_contact() {
        let by_post = DisclosureRequest { receive: ReceiveBy::Post, ..good_request() };
        assert_eq!(
            message_for(&by_post.validate(today()), Field::Address),
            Some("选择邮寄时，请填写通信地址")
        );
        let by_mail = DisclosureRequest {
            receive: ReceiveBy::Email,
            carrier: Carrier::Electronic,
            ..good_request()
        };
        assert_eq!(fields(&by_mail.validate(today())), vec![Field::Email]);
        let paper_by_mail = DisclosureRequest {
            receive: ReceiveBy::Email,
            email: "zhangsan@example.com".into(),
            ..good_request()
        };
        assert_eq!(fields(&paper_by_mail.validate(today())), vec![Field::Receive]);
    }

    #[test]
    fn a_bad_id_or_phone_is_explained_without_repeating_it() {
        let r = DisclosureRequest {
            id_number: "110105194912310021".into(),
            phone: "1380013800".into(),
            ..good_request()
        };
        let errors = r.validate(today());
        assert_eq!(fields(&errors), vec![Field::IdNumber, Field::Phone]);
        assert!(errors
            .iter()
            .all(|e| !e.message.contains("110105") && !e.message.contains("1380013800")));
        // A passport number is not checked as a 居民身份证.
        let passport = DisclosureRequest {
            id_type: IdType::Passport,
            id_number: "E12345678".into(),
            ..good_request()
        };
        assert_eq!(passport.validate(today()), vec![]);
    }

    #[test]
    fn assisted_forms_name_the_assistant() {
        let r = DisclosureRequest { assisted: true, ..good_request() };
        assert_eq!(fields(&r.validate(today())), vec![Field::Assistant]);
        let r = DisclosureRequest {
            assisted: true,
            assistant: "窗口工作人员 017".into(),
            ..good_request()
        };
        assert_eq!(r.validate(today()), vec![]);
    }

    #[test]
    fn debug_output_withholds_personal_data() {
        let text = format!("{:?}", good_request());
        assert!(!text.contains("张三") && !text.contains("1101051949"), "{text}");
        let s = Suggestion {
            text: "窗口排队太久".into(),
            contact: "13800138000".into(),
            ..Suggestion::default()
        };
        assert!(!format!("{s:?}").contains("13800138000"));
    }

    #[test]
    fn wipe_clears_the_form() {
        let mut r = good_request();
        r.wipe();
        assert_eq!(r, DisclosureRequest::default());
    }

    #[test]
    fn suggestions_need_topic_text_and_rating() {
        let empty = Suggestion::default();
        assert_eq!(fields(&empty.validate()), vec![Field::Topic, Field::Text, Field::Satisfaction]);
        let ok = Suggestion {
            topic: "办事效率".into(),
            text: "希望增加周末窗口".into(),
            satisfaction: 4,
            ..Suggestion::default()
        };
        assert_eq!(ok.validate(), vec![]);
        let bad_contact = Suggestion { contact: "12345".into(), consent: true, ..ok.clone() };
        assert_eq!(fields(&bad_contact.validate()), vec![Field::Contact]);
        let no_consent = Suggestion { contact: "zhangsan@example.com".into(), ..ok.clone() };
        assert_eq!(fields(&no_consent.validate()), vec![Field::Consent]);
        let too_many_stars = Suggestion { satisfaction: 6, ..ok };
        assert_eq!(fields(&too_many_stars.validate()), vec![Field::Satisfaction]);
    }
}
