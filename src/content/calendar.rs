//! Working days for the statutory clock of 《政府信息公开条例》: the day of receipt is not
//! counted; Saturdays, Sundays and statutory holidays are not working days; 调休 make-up
//! days are. Dates outside the calendar's published years are unknown, never guessed.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use thiserror::Error;

use super::model::Calendar;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("the working-day calendar has no data for {year} (it covers {covered}): ask the city to publish that year's holidays; a deadline is never guessed")]
    UnknownYear { year: i32, covered: String },
}

impl Calendar {
    /// Whether `day` is a working day.
    pub fn is_working_day(&self, day: NaiveDate) -> Result<bool, CalendarError> {
        if !self.years.contains(&day.year()) {
            let mut years = self.years.clone();
            years.sort_unstable();
            let covered = match (years.first(), years.last()) {
                (Some(a), Some(b)) => format!("{a}–{b}"),
                _ => "no year".to_string(),
            };
            return Err(CalendarError::UnknownYear { year: day.year(), covered });
        }
        if self.workdays.contains(&day) {
            return Ok(true);
        }
        if self.holidays.contains(&day) {
            return Ok(false);
        }
        Ok(!matches!(day.weekday(), Weekday::Sat | Weekday::Sun))
    }

    /// The date `working_days` working days after `from`, not counting `from` itself.
    pub fn add_working_days(
        &self,
        from: NaiveDate,
        working_days: u32,
    ) -> Result<NaiveDate, CalendarError> {
        // Check the start too, so a receipt date outside the calendar is reported, not guessed.
        self.is_working_day(from)?;
        let mut day = from;
        let mut left = working_days;
        while left > 0 {
            day = day.checked_add_days(Days::new(1)).unwrap_or(day);
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn skips_weekends_and_counts_make_up_days() {
        let cal = Calendar {
            years: vec![2024],
            holidays: vec![
                d("2024-10-01"),
                d("2024-10-02"),
                d("2024-10-03"),
                d("2024-10-04"),
                d("2024-10-07"),
            ],
            workdays: vec![d("2024-09-29"), d("2024-10-12")],
        };
        // Friday 27 Sep + 1 working day: Sunday 29 Sep is a 调休 working day.
        assert_eq!(cal.add_working_days(d("2024-09-27"), 1), Ok(d("2024-09-29")));
        // From Sunday 29 Sep: 30 Sep, then 8 Oct (1–7 off).
        assert_eq!(cal.add_working_days(d("2024-09-29"), 2), Ok(d("2024-10-08")));
        assert!(matches!(
            cal.add_working_days(d("2024-12-20"), 20),
            Err(CalendarError::UnknownYear { year: 2025, .. })
        ));
    }
}
