//! Resident requests: the 依申请公开 and 意见建议 forms and their validation, the
//! statutory clock, sealing personal data to the city's public key, receipt numbers, and
//! the store-and-forward outbox. Plain Rust: the UI adapter fills a form and calls
//! [`submit`]; the sync worker drains the [`Outbox`].
//!
//! Personal data exists in plain text only in the form structs in memory. [`submit`]
//! seals it before anything is written, so the outbox, logs and telemetry only ever see
//! the sealed box and the routing metadata (uuid, kind, device, receipt number, dates).

pub mod check;
pub mod clock;
pub mod form;
pub mod outbox;
pub mod receipt;
pub mod seal;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::content::Calendar;

pub use clock::{china_date, extended_due, reply_due, third_party_due, Period};
pub use form::{
    message_for, Carrier, DisclosureRequest, Field, FieldError, IdType, ReceiveBy, Suggestion,
    CONSENT_NOTICE, SATISFACTION_LABELS, SUGGESTION_TOPICS,
};
pub use outbox::{Outbox, OutboxCounts, OutboxError, Pending};
pub use receipt::{receipt_number, station_code, BadStation, Receipt};
pub use seal::{
    new_uuid, open, seal, CityKey, CitySecret, KeyError, OpenError, Personal, SealError,
    Submission, SubmissionKind,
};

/// The outbox's file name under the kiosk's `data_dir`, beside (not inside) the content
/// versions, which are replaced on every update.
pub const OUTBOX_FILE: &str = "outbox.db";

/// Who is taking the submission: fixed for a kiosk.
#[derive(Clone, Debug)]
pub struct Intake<'a> {
    /// The device id (config `device_id`).
    pub device: &'a str,
    /// The receipt station code, usually [`station_code`] of the kiosk's scope and id.
    pub station: &'a str,
    /// The city's public key for submissions.
    pub city_key: &'a CityKey,
    /// The working-day calendar of the installed content.
    pub calendar: &'a Calendar,
}

#[derive(Debug, Error)]
pub enum SubmitError {
    /// The form has mistakes; show each message next to its field.
    #[error("the form has {} field(s) to correct", .0.len())]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Validates, numbers, seals and stores a submission, and returns the resident's receipt.
///
/// The request is taken even when the calendar does not cover the date (the law requires
/// accepting it): the receipt then says the due date will be given by the office, and
/// `Receipt::due` is `None`. When this returns `Ok`, the sealed submission is durably in
/// the outbox.
pub fn submit(
    outbox: &mut Outbox,
    intake: &Intake<'_>,
    personal: &Personal,
    now: DateTime<Utc>,
) -> Result<Receipt, SubmitError> {
    let received_on = china_date(now);
    let errors = match personal {
        Personal::Request(r) => r.validate(received_on),
        Personal::Suggestion(s) => s.validate(),
    };
    if !errors.is_empty() {
        return Err(SubmitError::Invalid(errors));
    }
    let kind = personal.kind();
    let due = match kind {
        SubmissionKind::Request => reply_due(intake.calendar, received_on).ok(),
        SubmissionKind::Suggestion => None,
    };
    let number = outbox.next_receipt_no(kind, intake.station, received_on)?;
    let uuid = new_uuid();
    let sealed = seal(intake.city_key, &uuid, &number, personal)?;
    let submission = Submission {
        uuid: uuid.clone(),
        kind,
        device: intake.device.to_string(),
        receipt_no: number.clone(),
        created: now,
        received_on,
        due,
        sealed,
    };
    outbox.enqueue(&submission)?;
    Ok(Receipt { number, kind, uuid, received_on, due })
}
