//! Format checks for what residents type: 居民身份证 numbers (GB 11643), mobile and
//! landline phone numbers, e-mail addresses. Each returns the message shown next to the
//! field, in plain Chinese; none of them repeats the value, so a message is safe to log.

use chrono::{Datelike, NaiveDate};

/// GB 11643-1999 weights of the first 17 digits.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder mod 11.
const ID_CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The province-level codes (first two digits) a 居民身份证 can start with, including 71
/// (台湾), 81 (香港), 82 (澳门) for residence permits.
const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

/// Checks an 18-digit 居民身份证 number: digits, region, a real birth date not after
/// `today`, and the check digit. A lower-case `x` is accepted.
pub fn resident_id(number: &str, today: NaiveDate) -> Result<(), &'static str> {
    let chars: Vec<char> = number.trim().chars().map(|c| c.to_ascii_uppercase()).collect();
    if chars.len() != 18 {
        return Err("居民身份证号码应为18位，请核对");
    }
    let digits: Vec<u32> = chars[..17].iter().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 17 || !(chars[17].is_ascii_digit() || chars[17] == 'X') {
        return Err("居民身份证号码前17位应为数字，最后一位是数字或X");
    }
    if !PROVINCES.contains(&(digits[0] * 10 + digits[1])) {
        return Err("居民身份证号码的地区码不正确，请核对前两位");
    }
    let num = |range: std::ops::Range<usize>| digits[range].iter().fold(0, |acc, d| acc * 10 + d);
    let birth = NaiveDate::from_ymd_opt(num(6..10) as i32, num(10..12), num(12..14));
    match birth {
        Some(b) if b.year() >= 1900 && b <= today => {}
        _ => return Err("居民身份证号码中的出生日期不正确，请核对第7至14位"),
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    if ID_CHECK[(sum % 11) as usize] != chars[17] {
        return Err("居民身份证号码校验位不对，请逐位核对后重新输入");
    }
    Ok(())
}

/// The check character GB 11643 gives the first 17 digits; for tests and fixtures.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let digits: Vec<u32> = first17.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 17 || first17.chars().count() != 17 {
        return None;
    }
    let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| d * w).sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Checks a phone number: a mainland mobile number (11 digits starting 13–19, an optional
/// +86), or a landline with area code (`0731-87654321`, `073187654321`, optional extension
/// `-123` or `转123`), or a local landline of 7–8 digits. Spaces and hyphens are ignored.
pub fn phone(number: &str) -> Result<(), &'static str> {
    const MESSAGE: &str =
        "电话号码格式不对：请填写11位手机号码，或带区号的固定电话（如0731-87654321）";
    let trimmed = number.trim();
    // An extension comes after 转 or a second hyphen; only the main number is checked.
    let main = match trimmed.split_once('转') {
        Some((main, ext))
            if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_digit()) && ext.len() <= 6 =>
        {
            main
        }
        Some(_) => return Err(MESSAGE),
        None => trimmed,
    };
    // A second hyphen may start an extension (0731-87654321-806) or just group digits
    // (138-0013-8000): the number is fine if either reading is.
    let mut readings = vec![main];
    if let Some((m, ext)) = main.rsplit_once('-') {
        if main.matches('-').count() >= 2
            && !ext.is_empty()
            && ext.len() <= 6
            && ext.chars().all(|c| c.is_ascii_digit())
        {
            readings.push(m);
        }
    }
    if readings.into_iter().any(main_number_ok) {
        Ok(())
    } else {
        Err(MESSAGE)
    }
}

fn main_number_ok(main: &str) -> bool {
    let compact: String =
        main.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '（' | '）')).collect();
    let compact =
        compact.strip_prefix("+86").or_else(|| compact.strip_prefix("0086")).unwrap_or(&compact);
    if compact.is_empty() || !compact.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let b = compact.as_bytes();
    let mobile = b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]);
    // 0 + a 2–3 digit area code + a 7–8 digit number that does not start with 0 or 1.
    let landline = b[0] == b'0'
        && (10..=12).contains(&b.len())
        && [3usize, 4]
            .iter()
            .any(|&area| b.len() > area && (7..=8).contains(&(b.len() - area)) && b[area] >= b'2');
    let local = (7..=8).contains(&b.len()) && b[0] >= b'2';
    mobile || landline || local
}

/// Checks an e-mail address well enough to catch typing slips: one `@`, a name before it,
/// a domain with a dot after it, no spaces or full-width characters.
pub fn email(address: &str) -> Result<(), &'static str> {
    const MESSAGE: &str = "电子邮箱格式不对，例如 zhangsan@example.com（请使用英文字符）";
    let a = address.trim();
    let Some((local, domain)) = a.split_once('@') else { return Err(MESSAGE) };
    let ok_chars = |s: &str| s.chars().all(|c| c.is_ascii_graphic() && c != '@');
    let ok_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !local.is_empty() && local.len() <= 64 && ok_chars(local) && ok_domain && a.len() <= 254 {
        Ok(())
    } else {
        Err(MESSAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).expect("date")
    }

    #[test]
    fn accepts_the_standard_example_id() {
        // The worked example of GB 11643-1999, Appendix A: 11010519491231002X.
        assert_eq!(resident_id("11010519491231002X", today()), Ok(()));
        assert_eq!(resident_id("11010519491231002x", today()), Ok(()));
        assert_eq!(resident_id_check_char("11010519491231002"), Some('X'));
        let first17 = "44052418800101001";
        let id = format!("{first17}{}", resident_id_check_char(first17).expect("check"));
        assert!(resident_id(&id, today()).is_err(), "born 1880 is refused");
    }

    #[test]
    fn refuses_wrong_check_digit_length_and_dates() {
        assert_eq!(
            resident_id("110105194912310021", today()),
            Err("居民身份证号码校验位不对，请逐位核对后重新输入")
        );
        assert_eq!(
            resident_id("11010519491231002", today()),
            Err("居民身份证号码应为18位，请核对")
        );
        assert!(resident_id("1101051949123100AX", today()).is_err());
        // 31 February.
        let first17 = "43018219900231001";
        let id = format!("{first17}{}", resident_id_check_char(first17).expect("check"));
        assert_eq!(
            resident_id(&id, today()),
            Err("居民身份证号码中的出生日期不正确，请核对第7至14位")
        );
        // Born tomorrow.
        let first17 = "43018220261124001";
        let id = format!("{first17}{}", resident_id_check_char(first17).expect("check"));
        assert!(resident_id(&id, today()).is_err());
        // Region 99 does not exist.
        let first17 = "99018219900101001";
        let id = format!("{first17}{}", resident_id_check_char(first17).expect("check"));
        assert_eq!(resident_id(&id, today()), Err("居民身份证号码的地区码不正确，请核对前两位"));
    }

    #[test]
    fn phone_numbers_residents_write() {
        for ok in [
            "13800138000",
            "138 0013 8000",
            "+86 138-0013-8000",
            "0731-87654321",
            "073187654321",
            "010-12345678",
            "0731-8765432",
            "0731-87654321-806",
            "0731-87654321转806",
            "87654321",
        ] {
            assert_eq!(phone(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "12800138000",
            "1380013800",
            "138001380001",
            "abc",
            "0731-0765432",
            "0731-87654321转",
            "110",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_addresses() {
        assert_eq!(email("zhangsan@example.com"), Ok(()));
        assert_eq!(email(" li.si+zwgk@mail.hunan.gov.cn "), Ok(()));
        for bad in [
            "zhangsan",
            "zhangsan@",
            "@example.com",
            "zhang san@example.com",
            "张三@example.com",
            "a@b",
            "a@@b.cn",
            "a@b..cn",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }
}
