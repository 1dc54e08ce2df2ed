//! Small helpers shared by the source readers: TOML values as JSON values (so TOML dates
//! become strings that chrono reads), the times admins write, and finding the line of a key.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use serde::{Deserialize, Deserializer};

/// Converts TOML to JSON, writing TOML dates and times as their text (`2024-10-01`,
/// `2026-11-20T08:00:00+08:00`), which the model's chrono types parse.
pub fn toml_to_json(v: toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s),
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Value::from(f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(toml_to_json).collect())
        }
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// China Standard Time, the zone admins mean when they write a time without one.
pub fn cst() -> FixedOffset {
    // 8 hours is within FixedOffset's range, so the fallback is never taken.
    FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix())
}

/// Parses a moment as admins write it: RFC 3339 (`2026-11-20T08:00:00+08:00`), a local
/// date-time (`2026-11-20T08:00:00` or `2026-11-20 08:00`, China time) or a date
/// (`2026-11-20`, the start of that day in China).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return cst().from_local_datetime(&t).single().map(|t| t.with_timezone(&Utc));
        }
    }
    let d = parse_date(s)?;
    cst().from_local_datetime(&d.and_time(NaiveTime::MIN)).single().map(|t| t.with_timezone(&Utc))
}

/// Parses `2024-10-01`, `2024/10/1` or `2024年10月1日`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    for fmt in ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, fmt) {
            return Some(d);
        }
    }
    None
}

/// A moment in an input file; see [`parse_instant`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Instant(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_instant(&s).map(Instant).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "“{s}” is not a time: write 2026-11-20, 2026-11-20 08:00 (China time) or 2026-11-20T08:00:00+08:00"
            ))
        })
    }
}

/// A date in an input file; see [`parse_date`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Date(pub NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_date(&s).map(Date).ok_or_else(|| {
            serde::de::Error::custom(format!("“{s}” is not a date: write it as 2024-10-01"))
        })
    }
}

/// A text that admins may write as a number (an id such as `2020` in YAML).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Text(s)),
            serde_json::Value::Number(n) => Ok(Text(n.to_string())),
            other => Err(serde::de::Error::custom(format!("expected a text, found {other}"))),
        }
    }
}

/// One text or a list of texts (`topics: 政务公开` or `topics: [政务公开, 社会保障]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Texts(pub Vec<String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Texts(
                s.split(['、', '，', ',', '；', ';'])
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
            OneOrMany::Many(v) => Texts(v),
        })
    }
}

/// The 1-based line, between `from` and `to` (1-based, inclusive), where `key` is set, for
/// pointing at the field a deserialization error names.
pub fn find_key_line(text: &str, from: usize, to: usize, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .take(to.saturating_sub(from) + 1)
        .find_map(|(i, l)| {
            let l = l.trim_start().trim_start_matches('"');
            let rest = l.strip_prefix(key)?;
            let rest = rest.trim_start_matches('"').trim_start();
            (rest.starts_with('=') || rest.starts_with(':')).then_some(i + 1)
        })
}

/// The field name a serde error is about (“missing field `answer`”, “unknown field `x`”).
pub fn field_in_error(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_are_china_time() {
        assert_eq!(
            parse_instant("2026-11-20").map(|t| t.to_rfc3339()),
            Some("2026-11-19T16:00:00+00:00".into())
        );
        assert_eq!(
            parse_instant("2026-11-20 08:00").map(|t| t.to_rfc3339()),
            Some("2026-11-20T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_instant("2026-11-20T08:00:00Z").map(|t| t.to_rfc3339()),
            Some("2026-11-20T08:00:00+00:00".into())
        );
        assert_eq!(parse_date("2020年5月25日"), NaiveDate::from_ymd_opt(2020, 5, 25));
    }
}
