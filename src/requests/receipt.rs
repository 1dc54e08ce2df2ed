//! Receipt numbers and the receipt a resident takes away.
//!
//! A number reads `YSQ-430182K001-20261123-0001`: the kind (`YSQ` 依申请公开, `YJJY`
//! 意见建议), the station (the county's division code and a short device tag), the date
//! of receipt and a sequence the device's outbox keeps per day, so numbers never repeat
//! on one device, across restarts too. The city de-duplicates by uuid, not by this number;
//! the number is for people to quote on the phone.

use chrono::NaiveDate;
use thiserror::Error;

use super::seal::SubmissionKind;
use crate::content::ScopeCode;
use crate::store::chinese_date;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("the receipt station code must be 1–16 letters or digits, e.g. 430182K001")]
pub struct BadStation;

/// Formats a receipt number. `station` is upper-cased and must be 1–16 ASCII letters or
/// digits; `seq` starts at 1 each day.
pub fn receipt_number(
    kind: SubmissionKind,
    station: &str,
    day: NaiveDate,
    seq: u32,
) -> Result<String, BadStation> {
    if station.is_empty()
        || station.len() > 16
        || !station.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(BadStation);
    }
    Ok(format!(
        "{}-{}-{}-{:04}",
        kind.receipt_prefix(),
        station.to_ascii_uppercase(),
        day.format("%Y%m%d"),
        seq
    ))
}

/// The station code of a kiosk: the six-digit division of its scope and, after `K`, the
/// last four letters or digits of its device id. Kiosks of one county must differ there
/// for their numbers to differ (the uuid keeps submissions apart regardless).
pub fn station_code(scope: &ScopeCode, device_id: &str) -> String {
    let division: String = scope.as_str().chars().take(6).collect();
    let alnum: Vec<char> = device_id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let tag: String =
        alnum[alnum.len().saturating_sub(4)..].iter().collect::<String>().to_ascii_uppercase();
    if tag.is_empty() {
        division
    } else {
        format!("{division}K{tag}")
    }
}

/// What the resident is given after pressing 提交: shown on screen, printed when a
/// printer is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub number: String,
    pub kind: SubmissionKind,
    /// Identifies the submission to the city; not shown to the resident.
    pub uuid: String,
    /// 收到申请之日.
    pub received_on: NaiveDate,
    /// 答复期限 (requests only), when the calendar covers it.
    pub due: Option<NaiveDate>,
}

impl Receipt {
    /// The due-date line of the receipt, in words for the resident.
    pub fn due_text(&self) -> String {
        match (self.kind, self.due) {
            (SubmissionKind::Request, Some(d)) => {
                format!("答复期限：{}前（20个工作日内）", chinese_date(d))
            }
            (SubmissionKind::Request, None) => {
                "答复期限：20个工作日内，具体日期由受理机关告知".to_string()
            }
            (SubmissionKind::Suggestion, _) => "我们会认真研究您的意见建议".to_string(),
        }
    }

    /// The address the receipt's QR code opens to follow the request online, from the
    /// city's tracking page (e.g. `https://zwgk.example.gov.cn/track`).
    pub fn tracking_url(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}no={}", self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")
    }

    #[test]
    fn numbers_read_kind_station_date_sequence() {
        assert_eq!(
            receipt_number(SubmissionKind::Request, "430182k001", day(), 1).as_deref(),
            Ok("YSQ-430182K001-20261123-0001")
        );
        assert_eq!(
            receipt_number(SubmissionKind::Suggestion, "430182", day(), 12345).as_deref(),
            Ok("YJJY-430182-20261123-12345")
        );
        assert_eq!(receipt_number(SubmissionKind::Request, "430-182", day(), 1), Err(BadStation));
        assert_eq!(receipt_number(SubmissionKind::Request, "", day(), 1), Err(BadStation));
    }

    #[test]
    fn station_codes_come_from_scope_and_device() {
        let scope = ScopeCode::parse("430182-001-01").expect("scope");
        assert_eq!(station_code(&scope, "nx-zwfw-k001"), "430182KK001");
        assert_eq!(station_code(&scope, "demo-kiosk"), "430182KIOSK");
        assert_eq!(station_code(&scope, "--"), "430182");
    }

    #[test]
    fn due_text_and_tracking_url() {
        let r = Receipt {
            number: "YSQ-430182-20261123-0001".into(),
            kind: SubmissionKind::Request,
            uuid: "u".into(),
            received_on: day(),
            due: NaiveDate::from_ymd_opt(2026, 12, 21),
        };
        assert_eq!(r.due_text(), "答复期限：2026年12月21日前（20个工作日内）");
        assert_eq!(
            r.tracking_url("https://zwgk.example.gov.cn/track"),
            "https://zwgk.example.gov.cn/track?no=YSQ-430182-20261123-0001"
        );
        let unknown = Receipt { due: None, ..r };
        assert_eq!(unknown.due_text(), "答复期限：20个工作日内，具体日期由受理机关告知");
    }
}
