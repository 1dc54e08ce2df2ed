//! The statutory clock of 《政府信息公开条例》: a reply is due 20 working days after the
//! request is received (第三十三条), an extension adds at most 20 more, and a third party
//! asked for its opinion has 15 working days (第三十二条). Working days come from the
//! calendar the city publishes with content ([`Calendar::add_working_days`]); a date the
//! calendar does not cover is an error, never a guess.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::content::calendar::CalendarError;
use crate::content::Calendar;

/// A period the law sets, in working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// 答复期限: 20 working days from receipt (第三十三条第二款).
    Reply,
    /// 延长答复期限: at most 20 more working days, counted from the original due date.
    Extension,
    /// 第三方意见: 15 working days from the day the third party receives the request
    /// for its opinion (第三十二条).
    ThirdParty,
}

impl Period {
    pub fn working_days(self) -> u32 {
        match self {
            Period::Reply | Period::Extension => 20,
            Period::ThirdParty => 15,
        }
    }
}

/// The last day of `period` counted from `from`, which itself is not counted.
pub fn due(
    calendar: &Calendar,
    from: NaiveDate,
    period: Period,
) -> Result<NaiveDate, CalendarError> {
    calendar.add_working_days(from, period.working_days())
}

/// The reply deadline of a request received on `received`.
pub fn reply_due(calendar: &Calendar, received: NaiveDate) -> Result<NaiveDate, CalendarError> {
    due(calendar, received, Period::Reply)
}

/// The deadline after the one extension the law allows, from the original deadline.
pub fn extended_due(
    calendar: &Calendar,
    original_due: NaiveDate,
) -> Result<NaiveDate, CalendarError> {
    due(calendar, original_due, Period::Extension)
}

/// The date a third party's opinion is due, from the day it received the request for it.
pub fn third_party_due(calendar: &Calendar, asked: NaiveDate) -> Result<NaiveDate, CalendarError> {
    due(calendar, asked, Period::ThirdParty)
}

/// The calendar date in China (UTC+8, no daylight saving) at `now`: the date that counts
/// as 收到申请之日 for a request handed in at the kiosk.
pub fn china_date(now: DateTime<Utc>) -> NaiveDate {
    (now + Duration::hours(8)).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_late_evening_submission_counts_on_the_china_date() {
        // 16:30 UTC on 31 Dec is 00:30 on 1 Jan in Beijing.
        let t = Utc.with_ymd_and_hms(2025, 12, 31, 16, 30, 0).single().expect("time");
        assert_eq!(china_date(t), NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"));
    }
}
