//! FormAdapter: the 依申请公开 and 意见建议 forms and their receipt (QR of the tracking
//! address, 打印回执 when a printer is configured). Field values live in the session (so
//! an idle wipe removes them) and are typed with the on-screen keyboard.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::form::{check, fields, initial_values, intro, messages, personal, station, title, wipe};
use super::session::{FormKind, Target};
use super::{App, AppWindow, FieldRow, FormAdapter, MetaRow};
use crate::print::Printout;
use crate::requests::{Intake, SubmitError};

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let form = window.global::<FormAdapter>();
    let a = app.clone();
    form.on_focus(move |i| {
        a.activity();
        if let Ok(i) = usize::try_from(i) {
            focus(&a, i);
        }
    });
    let a = app.clone();
    form.on_choose(move |i, choice| {
        a.activity();
        let Ok(i) = usize::try_from(i) else { return };
        {
            let mut s = a.session.borrow_mut();
            if let Some(v) = s.form_values.get_mut(i) {
                *v = choice.to_string();
            }
            if let Some(e) = s.form_errors.get_mut(i) {
                e.clear();
            }
        }
        refresh(&a);
    });
    let a = app.clone();
    form.on_submit(move || {
        a.activity();
        submit(&a);
    });
    let a = app.clone();
    form.on_print_receipt(move || {
        a.activity();
        print_receipt(&a);
    });
    let a = app.clone();
    form.on_reset(move || {
        a.activity();
        let kind = a.session.borrow().form_kind;
        if let Some(kind) = kind {
            start(&a, kind);
            super::keyboard_adapter::close(&a);
            refresh(&a);
        }
    });
}

/// Fresh, empty values for `kind`.
fn start(app: &App, kind: FormKind) {
    let mut s = app.session.borrow_mut();
    s.form_kind = Some(kind);
    s.form_values = initial_values(kind);
    s.form_errors = vec![String::new(); s.form_values.len()];
    s.form_message.clear();
    s.receipt = None;
}

/// Puts the keyboard on text field `i`.
pub fn focus(app: &Rc<App>, i: usize) {
    let Some(kind) = app.session.borrow().form_kind else { return };
    if fields(kind).get(i).is_some_and(|f| f.choices.is_empty()) {
        super::keyboard_adapter::open_for(app, Target::Field(i));
        refresh(app);
    }
}

/// Puts the keyboard on the first text field.
pub fn focus_first(app: &Rc<App>) {
    let first = app
        .session
        .borrow()
        .form_kind
        .and_then(|k| fields(k).iter().position(|f| f.choices.is_empty()));
    if let Some(i) = first {
        focus(app, i);
    }
}

/// The value of field `i` (the keyboard reads it to edit).
pub fn value(app: &App, i: usize) -> String {
    app.session.borrow().form_values.get(i).cloned().unwrap_or_default()
}

/// Sets field `i` as typed and redraws it.
pub fn set_value(app: &Rc<App>, i: usize, value: String) {
    {
        let mut s = app.session.borrow_mut();
        if let Some(v) = s.form_values.get_mut(i) {
            *v = value;
        }
        if let Some(e) = s.form_errors.get_mut(i) {
            e.clear();
        }
    }
    refresh(app);
}

/// The label of field `i`, shown on the keyboard.
pub fn label(app: &App, i: usize) -> String {
    app.session
        .borrow()
        .form_kind
        .and_then(|k| fields(k).get(i))
        .map(|f| f.label.to_string())
        .unwrap_or_default()
}

/// The next text field after `i`, for the keyboard's 确定.
pub fn next_text_field(app: &App, i: usize) -> Option<usize> {
    let kind = app.session.borrow().form_kind?;
    fields(kind).iter().enumerate().skip(i + 1).find(|(_, f)| f.choices.is_empty()).map(|(n, _)| n)
}

/// Checks the form and, when complete, seals it into the outbox and shows the receipt.
pub fn submit(app: &Rc<App>) {
    let Some(kind) = app.session.borrow().form_kind else { return };
    let now = chrono::Utc::now();
    let errors = check(kind, &app.session.borrow().form_values, crate::requests::china_date(now));
    let complete = errors.iter().all(String::is_empty);
    app.session.borrow_mut().form_errors = errors;
    let message = if complete {
        send(app, kind, now)
    } else {
        Err("还有内容需要补充或修改，请查看红色提示。".into())
    };
    if let Err(m) = message {
        app.session.borrow_mut().form_message = m;
    }
    super::keyboard_adapter::close(app);
    refresh(app);
}

/// Seals and stores a complete form; on success the session holds the receipt and the
/// typed values are gone. The error is what the resident reads.
fn send(app: &Rc<App>, kind: FormKind, now: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let mut desk = app.desk.borrow_mut();
    let Some(desk) = desk.as_mut() else {
        return Err("本机暂不能提交，请到窗口办理或通过“扫码服务”中的平台在线提交。".into());
    };
    let calendar = app.store.as_ref().and_then(|s| s.calendar().ok()).unwrap_or_default();
    let station = station(&app.config.scope, &app.config.device_id);
    let intake = Intake {
        device: &app.config.device_id,
        station: &station,
        city_key: &desk.city_key,
        calendar: &calendar,
    };
    let mut form = personal(kind, &app.session.borrow().form_values);
    let result = crate::requests::submit(&mut desk.outbox, &intake, &form, now);
    wipe(&mut form);
    match result {
        Ok(receipt) => {
            let mut s = app.session.borrow_mut();
            s.form_values = initial_values(kind);
            s.form_errors = vec![String::new(); s.form_values.len()];
            s.form_message = receipt.due_text();
            let mut rows = vec![
                ("回执编号".into(), receipt.number.clone()),
                ("提交日期".into(), crate::store::chinese_date(receipt.received_on)),
                ("事项".into(), title(kind).into()),
            ];
            if let Some(url) = tracking_url(app, &receipt) {
                rows.push((TRACKING_ROW.into(), url));
            }
            s.receipt = Some(rows);
            Ok(())
        }
        Err(SubmitError::Invalid(errors)) => {
            app.session.borrow_mut().form_errors = messages(kind, &errors);
            Err("还有内容需要补充或修改，请查看红色提示。".into())
        }
        Err(e) => {
            app.log_error(format!("表单提交失败：{e}"));
            Err("提交没有成功，请稍后再试或到窗口办理。".into())
        }
    }
}

pub fn render(app: &Rc<App>, kind: FormKind) {
    if app.session.borrow().form_kind != Some(kind) {
        start(app, kind);
    }
    refresh(app);
}

/// Copies the session's form into the adapter.
pub fn refresh(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let s = app.session.borrow();
    let Some(kind) = s.form_kind else { return };
    let form = w.global::<FormAdapter>();
    form.set_title(title(kind).into());
    form.set_intro(intro(kind).into());
    form.set_consent(crate::requests::CONSENT_NOTICE.into());
    let rows: Vec<FieldRow> = fields(kind)
        .iter()
        .enumerate()
        .map(|(i, f)| FieldRow {
            key: f.key.into(),
            label: f.label.into(),
            value: s.form_values.get(i).map(String::as_str).unwrap_or_default().into(),
            placeholder: f.placeholder.into(),
            required: f.required,
            error: s.form_errors.get(i).map(String::as_str).unwrap_or_default().into(),
            multiline: f.multiline,
            choices: ModelRc::new(VecModel::from(
                f.choices.iter().map(|c| SharedString::from(*c)).collect::<Vec<_>>(),
            )),
        })
        .collect();
    form.set_fields(ModelRc::new(VecModel::from(rows)));
    form.set_focused(match s.target {
        Some(Target::Field(i)) => i32::try_from(i).unwrap_or(-1),
        _ => -1,
    });
    form.set_message(s.form_message.as_str().into());
    form.set_submitted(s.receipt.is_some());
    let receipt: Vec<MetaRow> = s
        .receipt
        .iter()
        .flatten()
        .map(|(k, v)| MetaRow { key: k.as_str().into(), value: v.as_str().into() })
        .collect();
    form.set_receipt(ModelRc::new(VecModel::from(receipt)));
    // The QR follows the request online; a bare receipt number in a QR would open nothing.
    form.set_receipt_qr(match receipt_row(&s, TRACKING_ROW) {
        Some(url) => super::qr::image(url),
        None => slint::Image::default(),
    });
    form.set_can_print(super::reader_adapter::printer(app).is_some());
    if s.receipt.is_none() {
        form.set_print_status(SharedString::default());
    }
}

/// The receipt row that holds the tracking address.
const TRACKING_ROW: &str = "查询网址";

fn receipt_row<'a>(s: &'a super::Session, key: &str) -> Option<&'a str> {
    s.receipt.iter().flatten().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Where the resident follows `receipt` online: the scope's `tracking_url`, a template
/// with `{no}` or a base that gets `?no=`; None when the scope has no tracking page.
fn tracking_url(app: &App, receipt: &crate::requests::Receipt) -> Option<String> {
    let t = app.branding.tracking_url.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
    Some(if t.contains("{no}") {
        t.replace("{no}", &receipt.number)
    } else {
        receipt.tracking_url(t)
    })
}

/// Prints the receipt on screen, off the UI thread.
fn print_receipt(app: &Rc<App>) {
    let Some(printer) = super::reader_adapter::printer(app) else { return };
    let printout = {
        let s = app.session.borrow();
        let (Some(kind), Some(rows)) = (s.form_kind, s.receipt.as_ref()) else { return };
        let shown: Vec<(String, String)> =
            rows.iter().filter(|(k, _)| k != TRACKING_ROW).cloned().collect();
        let heading = match kind {
            FormKind::Request => "政府信息公开申请回执",
            FormKind::Suggestion => "意见建议回执",
        };
        Printout::receipt(
            &app.branding.zone_name,
            heading,
            &shown,
            &s.form_message,
            receipt_row(&s, TRACKING_ROW),
            kind == FormKind::Request,
        )
    };
    if let Some(w) = app.window.upgrade() {
        w.global::<FormAdapter>().set_print_status("正在发送到打印机……".into());
    }
    let post = app.post.clone();
    let w = app.window.clone();
    let errors = app.errors.clone();
    printer.print_in_background(printout, move |outcome| {
        post(Box::new(move || {
            let text = match outcome {
                Ok(sent) => sent.message(),
                Err(e) => {
                    errors.push(format!("打印回执失败：{e:#}"));
                    crate::print::FAILED.to_string()
                }
            };
            if let Some(w) = w.upgrade() {
                w.global::<FormAdapter>().set_print_status(text.into());
            }
        }));
    });
}
