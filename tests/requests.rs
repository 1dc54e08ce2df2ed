//! Resident requests without the network: the statutory clock on the State Council's real
//! 2024 and 2025 holiday calendars, submitting through the outbox, the outbox surviving a
//! restart, receipt numbers that never repeat, and a byte scan proving that no planted
//! personal data reaches the outbox file in plain text.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use kiosk::content::calendar::CalendarError;
use kiosk::content::Calendar;
use kiosk::requests::{
    extended_due, open, reply_due, submit, third_party_due, CitySecret, DisclosureRequest, Field,
    Intake, Outbox, Personal, SubmissionKind, SubmitError, Suggestion,
};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("test date")
}

fn span(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|x| *x <= to).collect()
}

/// The holiday arrangements of the State Council General Office: 国办发明电〔2023〕7号
/// (2024) and 国办发明电〔2024〕12号 (2025), with their 调休 working weekends.
fn calendar_2024_2025() -> Calendar {
    let mut holidays = vec![d(2024, 1, 1), d(2024, 6, 10), d(2025, 1, 1)];
    for (a, b) in [
        (d(2024, 2, 10), d(2024, 2, 17)), // 春节
        (d(2024, 4, 4), d(2024, 4, 6)),   // 清明节
        (d(2024, 5, 1), d(2024, 5, 5)),   // 劳动节
        (d(2024, 9, 15), d(2024, 9, 17)), // 中秋节
        (d(2024, 10, 1), d(2024, 10, 7)), // 国庆节
        (d(2025, 1, 28), d(2025, 2, 4)),  // 春节
        (d(2025, 4, 4), d(2025, 4, 6)),   // 清明节
        (d(2025, 5, 1), d(2025, 5, 5)),   // 劳动节
        (d(2025, 5, 31), d(2025, 6, 2)),  // 端午节
        (d(2025, 10, 1), d(2025, 10, 8)), // 国庆节、中秋节
    ] {
        holidays.extend(span(a, b));
    }
    Calendar {
        years: vec![2024, 2025],
        holidays,
        workdays: vec![
            d(2024, 2, 4),
            d(2024, 2, 18),
            d(2024, 4, 7),
            d(2024, 4, 28),
            d(2024, 5, 11),
            d(2024, 9, 14),
            d(2024, 9, 29),
            d(2024, 10, 12),
            d(2025, 1, 26),
            d(2025, 2, 8),
            d(2025, 4, 27),
            d(2025, 9, 28),
            d(2025, 10, 11),
        ],
    }
}

#[test]
fn reply_due_across_spring_festival() {
    let cal = calendar_2024_2025();
    // Fri 2 Feb 2024: Sun 4 Feb and Sun 18 Feb are 调休 working days, 10–17 Feb are off.
    assert_eq!(reply_due(&cal, d(2024, 2, 2)), Ok(d(2024, 3, 6)));
    // Mon 20 Jan 2025: Sun 26 Jan and Sat 8 Feb work, 28 Jan – 4 Feb are off.
    assert_eq!(reply_due(&cal, d(2025, 1, 20)), Ok(d(2025, 2, 21)));
    // A third party asked on Fri 24 Jan 2025 has until 20 Feb.
    assert_eq!(third_party_due(&cal, d(2025, 1, 24)), Ok(d(2025, 2, 20)));
    // Extended once from the original deadline.
    assert_eq!(extended_due(&cal, d(2025, 2, 21)), Ok(d(2025, 3, 21)));
}

#[test]
fn reply_due_across_national_day() {
    let cal = calendar_2024_2025();
    // Fri 20 Sep 2024: Sun 29 Sep and Sat 12 Oct work, 1–7 Oct are off.
    assert_eq!(reply_due(&cal, d(2024, 9, 20)), Ok(d(2024, 10, 23)));
    assert_eq!(extended_due(&cal, d(2024, 10, 23)), Ok(d(2024, 11, 20)));
    assert_eq!(third_party_due(&cal, d(2024, 9, 27)), Ok(d(2024, 10, 23)));
    // Fri 19 Sep 2025: Sun 28 Sep and Sat 11 Oct work, 1–8 Oct are off.
    assert_eq!(reply_due(&cal, d(2025, 9, 19)), Ok(d(2025, 10, 23)));
    assert_eq!(reply_due(&cal, d(2025, 9, 30)), Ok(d(2025, 11, 4)));
}

#[test]
fn make_up_weekends_count_and_the_day_of_receipt_does_not() {
    let cal = calendar_2024_2025();
    // Received Saturday 3 Feb 2024: Sunday 4 Feb is a 调休 working day and is day one.
    assert_eq!(cal.add_working_days(d(2024, 2, 3), 1), Ok(d(2024, 2, 4)));
    assert_eq!(reply_due(&cal, d(2024, 2, 3)), Ok(d(2024, 3, 6)));
    // Friday 11 Oct 2024 + 1: Saturday 12 Oct works.
    assert_eq!(cal.add_working_days(d(2024, 10, 11), 1), Ok(d(2024, 10, 12)));
    // Friday 26 Sep 2025 + 1: Sunday 28 Sep works.
    assert_eq!(cal.add_working_days(d(2025, 9, 26), 1), Ok(d(2025, 9, 28)));
    // An ordinary weekend does not count: Fri 20 Nov 2025 + 20 lands on Thu 18 Dec.
    assert_eq!(reply_due(&cal, d(2025, 11, 20)), Ok(d(2025, 12, 18)));
}

#[test]
fn a_date_outside_the_calendar_is_unknown_not_guessed() {
    let cal = calendar_2024_2025();
    // 20 working days from 10 Dec 2025 run into 2026, which this calendar does not cover.
    assert!(matches!(
        reply_due(&cal, d(2025, 12, 10)),
        Err(CalendarError::UnknownYear { year: 2026, .. })
    ));
    assert!(matches!(
        reply_due(&cal, d(2023, 12, 29)),
        Err(CalendarError::UnknownYear { year: 2023, .. })
    ));
    let message = reply_due(&cal, d(2025, 12, 10)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("2024–2025"), "the error says which years are covered: {message}");
}

// --- submitting -------------------------------------------------------------------------

/// The first 17 digits of a real-format 居民身份证 number (Changsha, born 1 Mar 1986);
/// [`planted_id`] adds the GB 11643 check digit.
const PLANTED_ID_17: &str = "43010419860301123";
const PLANTED_NAME: &str = "欧阳明哲";
const PLANTED_PHONE: &str = "13975112345";
const PLANTED_EMAIL: &str = "ouyang.mingzhe@example.com";
const PLANTED_ADDRESS: &str = "宁乡市玉潭街道新康路88号";

fn planted_id() -> String {
    let check = kiosk::requests::check::resident_id_check_char(PLANTED_ID_17).expect("17 digits");
    format!("{PLANTED_ID_17}{check}")
}

fn planted_request() -> DisclosureRequest {
    DisclosureRequest {
        name: PLANTED_NAME.into(),
        id_number: planted_id(),
        phone: PLANTED_PHONE.into(),
        email: PLANTED_EMAIL.into(),
        address: PLANTED_ADDRESS.into(),
        info_name: "玉潭街道2025年低保名单".into(),
        consent: true,
        ..DisclosureRequest::default()
    }
}

/// 10:00 in Beijing on the given day.
fn morning(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(2, 0, 0).expect("time"))
}

#[test]
fn a_request_becomes_a_sealed_outbox_row_with_a_due_date() {
    let dir = tempfile::tempdir().expect("temp dir");
    let city = CitySecret::generate();
    let key = city.public();
    let cal = calendar_2024_2025();
    let intake =
        Intake { device: "nx-k001", station: "430182K001", city_key: &key, calendar: &cal };
    let mut outbox = Outbox::open(&dir.path().join("outbox.db")).expect("outbox");

    let receipt = submit(
        &mut outbox,
        &intake,
        &Personal::Request(planted_request()),
        morning(d(2024, 9, 20)),
    )
    .expect("submit");
    assert_eq!(receipt.number, "YSQ-430182K001-20240920-0001");
    assert_eq!(receipt.received_on, d(2024, 9, 20));
    assert_eq!(receipt.due, Some(d(2024, 10, 23)));
    assert_eq!(receipt.due_text(), "答复期限：2024年10月23日前（20个工作日内）");

    let waiting = outbox.pending(10).expect("pending");
    assert_eq!(waiting.len(), 1);
    let row = &waiting[0].submission;
    assert_eq!(
        (row.uuid.as_str(), row.kind, row.due),
        (receipt.uuid.as_str(), SubmissionKind::Request, receipt.due)
    );
    // Only the city's secret key opens it, and it holds exactly what the resident typed.
    assert_eq!(open(&city, row).expect("city opens"), Personal::Request(planted_request()));

    // A suggestion has no statutory due date and its own numbering prefix.
    let suggestion = Suggestion {
        topic: "服务态度".into(),
        text: "窗口工作人员很耐心".into(),
        satisfaction: 5,
        ..Suggestion::default()
    };
    let r2 =
        submit(&mut outbox, &intake, &Personal::Suggestion(suggestion), morning(d(2024, 9, 20)))
            .expect("submit");
    assert_eq!(r2.number, "YJJY-430182K001-20240920-0002");
    assert_eq!(r2.due, None);
    assert_eq!(outbox.waiting().expect("count"), 2);
}

#[test]
fn an_invalid_form_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = CitySecret::generate().public();
    let cal = calendar_2024_2025();
    let intake = Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
    let mut outbox = Outbox::open(&dir.path().join("outbox.db")).expect("outbox");
    let bad = DisclosureRequest { phone: "1397511234".into(), ..planted_request() };
    match submit(&mut outbox, &intake, &Personal::Request(bad), morning(d(2025, 3, 3))) {
        Err(SubmitError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, Field::Phone);
        }
        other => panic!("expected a field error, got {other:?}"),
    }
    assert_eq!(outbox.waiting().expect("count"), 0);
}

#[test]
fn a_request_outside_the_calendar_is_still_taken_without_a_guessed_date() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = CitySecret::generate().public();
    let cal = calendar_2024_2025();
    let intake = Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
    let mut outbox = Outbox::open(&dir.path().join("outbox.db")).expect("outbox");
    let receipt = submit(
        &mut outbox,
        &intake,
        &Personal::Request(planted_request()),
        morning(d(2025, 12, 10)),
    )
    .expect("taken");
    assert_eq!(receipt.due, None);
    assert_eq!(receipt.due_text(), "答复期限：20个工作日内，具体日期由受理机关告知");
    assert_eq!(outbox.waiting().expect("count"), 1);
}

#[test]
fn the_outbox_survives_a_restart_and_empties_only_on_the_city_receipt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let key = CitySecret::generate().public();
    let cal = calendar_2024_2025();
    let intake = Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
    let day = d(2025, 3, 3);
    let mut uuids = Vec::new();
    {
        let mut outbox = Outbox::open(&path).expect("outbox");
        for _ in 0..3 {
            uuids.push(
                submit(&mut outbox, &intake, &Personal::Request(planted_request()), morning(day))
                    .expect("submit")
                    .uuid,
            );
        }
        outbox.record_attempt(&uuids[0], morning(day)).expect("attempt");
        assert!(outbox.mark_sent(&uuids[0], morning(day)).expect("ack"));
    }
    // The process ends; a new one opens the same file.
    let mut outbox = Outbox::open(&path).expect("reopen");
    let counts = outbox.counts().expect("counts");
    assert_eq!((counts.unsent, counts.awaiting_receipt, counts.waiting()), (2, 1, 3));
    let pending: Vec<String> =
        outbox.pending(10).expect("pending").into_iter().map(|p| p.submission.uuid).collect();
    assert_eq!(pending, uuids[1..].to_vec(), "broker-acked rows are not resent at once");
    let acked = outbox
        .all()
        .expect("all")
        .into_iter()
        .find(|p| p.submission.uuid == uuids[0])
        .expect("row 0");
    assert_eq!(acked.attempts, 1);

    // No receipt a day later: the broker-acked one goes back in the queue.
    let later = morning(day).checked_add_days(Days::new(1)).expect("later");
    assert_eq!(outbox.requeue_unanswered(later).expect("requeue"), 1);
    assert_eq!(outbox.pending(10).expect("pending").len(), 3);

    // Receipts clear them; a repeated receipt is harmless.
    for uuid in &uuids {
        assert!(outbox.remove_on_receipt(uuid).expect("receipt"));
    }
    assert!(!outbox.remove_on_receipt(&uuids[0]).expect("repeat receipt"));
    assert_eq!(outbox.waiting().expect("count"), 0);

    // Receipt numbers continue after the restart and after the rows are gone.
    let next = submit(&mut outbox, &intake, &Personal::Request(planted_request()), morning(day))
        .expect("submit");
    assert_eq!(next.number, "YSQ-430182-20250303-0004");
}

#[test]
fn enqueueing_the_same_submission_twice_keeps_one_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = CitySecret::generate().public();
    let cal = calendar_2024_2025();
    let intake = Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
    let mut outbox = Outbox::open(&dir.path().join("outbox.db")).expect("outbox");
    submit(&mut outbox, &intake, &Personal::Request(planted_request()), morning(d(2025, 3, 3)))
        .expect("submit");
    let row = outbox.pending(1).expect("pending").remove(0).submission;
    assert!(!outbox.enqueue(&row).expect("enqueue again"));
    assert_eq!(outbox.waiting().expect("count"), 1);
}

/// Every file in `dir` (the outbox and its -wal/-shm), as bytes.
fn all_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let p = e.expect("entry").path();
            (p.display().to_string(), std::fs::read(&p).expect("read file"))
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_planted_personal_data_reaches_the_outbox_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let key = CitySecret::generate().public();
    let cal = calendar_2024_2025();
    let intake = Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
    let id = planted_id();
    let planted: Vec<&[u8]> = vec![
        PLANTED_NAME.as_bytes(),
        id.as_bytes(),
        PLANTED_PHONE.as_bytes(),
        PLANTED_EMAIL.as_bytes(),
        PLANTED_ADDRESS.as_bytes(),
        // The distinctive middle of the ID number (birth date + sequence), in case of a
        // partial copy.
        &id.as_bytes()[6..17],
    ];
    let with_contact = Suggestion {
        topic: "其他".into(),
        text: format!("我是{PLANTED_NAME}，请回电{PLANTED_PHONE}"),
        contact: PLANTED_PHONE.into(),
        satisfaction: 3,
        consent: true,
    };
    {
        let mut outbox = Outbox::open(&path).expect("outbox");
        for _ in 0..20 {
            submit(
                &mut outbox,
                &intake,
                &Personal::Request(planted_request()),
                morning(d(2025, 3, 3)),
            )
            .expect("submit");
        }
        submit(&mut outbox, &intake, &Personal::Suggestion(with_contact), morning(d(2025, 3, 3)))
            .expect("submit");
        // Scan while the connection is open too, when the rows may sit in the -wal file.
        for (file, bytes) in all_bytes(dir.path()) {
            for needle in &planted {
                assert!(
                    !contains(&bytes, needle),
                    "{file} holds planted personal data in plain text"
                );
            }
        }
    }
    let files = all_bytes(dir.path());
    assert!(
        files.iter().map(|(_, b)| b.len()).sum::<usize>() > 4096,
        "the scan read a real database"
    );
    for (file, bytes) in files {
        for needle in &planted {
            assert!(!contains(&bytes, needle), "{file} holds planted personal data in plain text");
        }
    }
    // Sanity check of the scan itself: the routing metadata is there in the clear.
    let raw: Vec<u8> = all_bytes(dir.path()).into_iter().flat_map(|(_, b)| b).collect();
    assert!(contains(&raw, b"YSQ-430182-20250303-0001"));
}

#[test]
fn two_connections_taking_forms_at_once_never_share_a_receipt_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    // Create the schema once before the threads race.
    drop(Outbox::open(&path).expect("outbox"));
    let key = CitySecret::generate().public();
    let numbers: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (path, key) = (path.clone(), key.clone());
                s.spawn(move || {
                    let cal = calendar_2024_2025();
                    let intake =
                        Intake { device: "k", station: "430182", city_key: &key, calendar: &cal };
                    let mut outbox = Outbox::open(&path).expect("outbox");
                    (0..25)
                        .map(|_| {
                            submit(
                                &mut outbox,
                                &intake,
                                &Personal::Request(planted_request()),
                                morning(d(2025, 3, 3)),
                            )
                            .expect("submit")
                            .number
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    let unique: std::collections::HashSet<&String> = numbers.iter().collect();
    assert_eq!(unique.len(), 50);
    assert!(unique.contains(&"YSQ-430182-20250303-0050".to_string()));
    assert_eq!(Outbox::open(&path).expect("reopen").waiting().expect("count"), 50);
}
