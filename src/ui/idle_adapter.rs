//! IdleAdapter: the idle clock, its countdown, the wipe of everything a resident entered,
//! and the attract loop of current 通知公告 and featured policies.

use std::rc::Rc;
use std::time::Duration;

use slint::{ComponentHandle as _, ModelRc, Timer, TimerMode, VecModel};

use super::session::{idle_phase, IdlePhase, Page, Session};
use super::{App, AppWindow, IdleAdapter, Slide, Theme};
use crate::content::{Kind, Validity};
use crate::store::ListQuery;

/// Seconds each attract slide stays.
const SLIDE_SECONDS: u32 = 8;

pub fn connect(window: &AppWindow, app: &Rc<App>, timers: &mut Vec<Timer>) {
    let idle = window.global::<IdleAdapter>();
    idle.set_zone_name(app.branding.zone_name.as_str().into());
    idle.set_countdown(0);
    idle.set_attract(false);
    let a = app.clone();
    idle.on_stay(move || {
        a.activity();
        if let Some(w) = a.window.upgrade() {
            w.global::<IdleAdapter>().set_countdown(0);
        }
    });
    let a = app.clone();
    idle.on_wake(move || {
        a.activity();
        if let Some(w) = a.window.upgrade() {
            w.global::<IdleAdapter>().set_attract(false);
        }
    });

    let timer = Timer::default();
    let a = app.clone();
    timer.start(TimerMode::Repeated, Duration::from_secs(1), move || tick(&a));
    timers.push(timer);
}

/// Whether the session holds nothing of the resident's: then there is nobody to ask
/// “还在使用吗” and the attract loop starts at once.
fn pristine(s: &Session) -> bool {
    s.stack.is_empty()
        && s.search.query.is_empty()
        && s.form_values.iter().all(String::is_empty)
        && s.composer.is_empty()
        && !s.care
}

/// One second of the idle clock.
fn tick(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let idle = w.global::<IdleAdapter>();
    if idle.get_attract() {
        let seconds = {
            let mut s = app.session.borrow_mut();
            s.idle_seconds = s.idle_seconds.saturating_add(1);
            s.idle_seconds
        };
        let n = slint::Model::row_count(&idle.get_slides());
        if n > 0 && seconds % SLIDE_SECONDS == 0 {
            idle.set_slide(((seconds / SLIDE_SECONDS) as usize % n) as i32);
        }
        return;
    }
    let (seconds, quiet) = {
        let mut s = app.session.borrow_mut();
        s.idle_seconds = s.idle_seconds.saturating_add(1);
        (s.idle_seconds, pristine(&s))
    };
    let countdown = if quiet { 0 } else { app.device.idle_countdown_seconds };
    match idle_phase(seconds, app.device.idle_seconds, countdown) {
        IdlePhase::Active => idle.set_countdown(0),
        IdlePhase::Countdown(n) => idle.set_countdown(i32::try_from(n).unwrap_or(i32::MAX)),
        IdlePhase::Expired => wipe(app),
    }
}

/// Ends the session: every input, form and search is dropped, 关怀 mode and read-aloud
/// stop, and the attract loop starts.
pub fn wipe(app: &Rc<App>) {
    super::reader_adapter::stop_reading(app);
    *app.session.borrow_mut() = Session::default();
    super::admin_adapter::close(app);
    if let Some(w) = app.window.upgrade() {
        w.global::<Theme>().set_care(false);
        let idle = w.global::<IdleAdapter>();
        idle.set_countdown(0);
        idle.set_slides(ModelRc::new(VecModel::from(slides(app))));
        idle.set_slide(0);
        idle.set_attract(true);
    }
    super::search_adapter::set_query(app, "");
    super::nav_adapter::show(app, Page::Home);
}

/// The attract loop: notices showing now, then policies in force, newest first.
fn slides(app: &App) -> Vec<Slide> {
    let Some(store) = &app.store else { return Vec::new() };
    let mut out: Vec<Slide> = store
        .notices_showing(chrono::Utc::now())
        .unwrap_or_default()
        .into_iter()
        .take(5)
        .map(|n| Slide {
            kind_label: "通知公告".into(),
            title: n.title.into(),
            line: n.subtitle.into(),
        })
        .collect();
    if let Ok(page) = store.list(&ListQuery::new(Kind::Policy).validity(Validity::Valid).page(0, 5))
    {
        out.extend(page.items.into_iter().map(|p| Slide {
            kind_label: "重点政策".into(),
            title: p.title.into(),
            line: p.subtitle.into(),
        }));
    }
    out
}

/// Shows the countdown (or the attract loop) without waiting, for screenshots.
pub fn preview(app: &Rc<App>, attract: bool) {
    if attract {
        wipe(app);
    } else if let Some(w) = app.window.upgrade() {
        w.global::<IdleAdapter>()
            .set_countdown(i32::try_from(app.device.idle_countdown_seconds).unwrap_or(10));
    }
}
