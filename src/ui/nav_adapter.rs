//! NavAdapter: the header (branding, date and time), the back/home/关怀 bar, and page
//! changes. Every page change goes through [`show`], which renders the page's adapter.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use slint::{ComponentHandle as _, Timer, TimerMode};

use super::session::{Page, Target};
use super::view::{date_line, parse_hex_color};
use super::{App, AppWindow, NavAdapter, Theme};

/// Taps on the logo within this window open the admin PIN pad.
const ADMIN_TAPS: u32 = 5;
const ADMIN_TAP_WINDOW: Duration = Duration::from_secs(3);

pub fn connect(window: &AppWindow, app: &Rc<App>, timers: &mut Vec<Timer>) {
    let nav = window.global::<NavAdapter>();
    let b = &app.branding;
    nav.set_zone_name(b.zone_name.as_str().into());
    nav.set_subtitle(b.subtitle.as_str().into());
    nav.set_hotline(b.hotline.as_str().into());
    let theme = window.global::<Theme>();
    if let Some((r, g, bl)) = parse_hex_color(&b.primary_color) {
        theme.set_primary(slint::Color::from_rgb_u8(r, g, bl));
    }
    if let Some((r, g, bl)) = parse_hex_color(&b.accent_color) {
        theme.set_accent(slint::Color::from_rgb_u8(r, g, bl));
    }
    theme.set_care_scale(app.device.care_scale.max(1.5));
    update_clock(window);

    let a = app.clone();
    nav.on_home(move || {
        a.activity();
        show(&a, Page::Home);
    });
    let a = app.clone();
    nav.on_back(move || {
        a.activity();
        let page = a.session.borrow_mut().back();
        render(&a, &page);
    });
    let a = app.clone();
    nav.on_toggle_care(move || {
        a.activity();
        toggle_care(&a);
    });
    let a = app.clone();
    let taps = Cell::new((0u32, Instant::now()));
    nav.on_logo_tapped(move || {
        let (n, first) = taps.get();
        let now = Instant::now();
        let n = if now.duration_since(first) > ADMIN_TAP_WINDOW { 1 } else { n + 1 };
        taps.set((n, if n == 1 { now } else { first }));
        if n >= ADMIN_TAPS {
            taps.set((0, now));
            super::admin_adapter::open(&a);
        }
    });

    let clock = Timer::default();
    let w = window.as_weak();
    clock.start(TimerMode::Repeated, Duration::from_secs(1), move || {
        if let Some(w) = w.upgrade() {
            update_clock(&w);
        }
    });
    timers.push(clock);
}

fn update_clock(window: &AppWindow) {
    let now = chrono::Local::now();
    let nav = window.global::<NavAdapter>();
    nav.set_date_text(date_line(now.date_naive()).into());
    nav.set_time_text(now.format("%H:%M").to_string().into());
}

/// Switches 关怀模式 and redraws the page, whose layout (rows per page) depends on it.
pub fn toggle_care(app: &Rc<App>) {
    let care = {
        let mut s = app.session.borrow_mut();
        s.care = !s.care;
        s.care
    };
    if let Some(w) = app.window.upgrade() {
        w.global::<Theme>().set_care(care);
    }
    let page = app.session.borrow().current();
    render(app, &page);
}

/// Opens `page` on top of the stack and renders it.
pub fn show(app: &Rc<App>, page: Page) {
    app.session.borrow_mut().push(page.clone());
    render(app, &page);
}

/// Replaces the current page (filters, paging) and renders it.
pub fn replace(app: &Rc<App>, page: Page) {
    app.session.borrow_mut().replace(page.clone());
    render(app, &page);
}

/// Fills the page's adapter and switches the window to it.
pub fn render(app: &Rc<App>, page: &Page) {
    let Some(w) = app.window.upgrade() else { return };
    // The keyboard belongs to the search box and the form fields; other pages close it.
    let keep_keyboard = matches!(
        (page, app.session.borrow().target),
        (Page::Search, Some(Target::Search)) | (Page::Form(_), Some(Target::Field(_)))
    );
    if !keep_keyboard {
        super::keyboard_adapter::close(app);
    }
    if !matches!(page, Page::Reader(_)) {
        super::reader_adapter::stop_reading(app);
    }
    match page {
        Page::Home => super::home_adapter::render(app),
        Page::List(state) => super::list_adapter::render(app, state),
        Page::Reader(id) => super::reader_adapter::render(app, id),
        Page::Catalog(path) => super::catalog_adapter::render(app, path),
        Page::Search => super::search_adapter::render(app),
        Page::Qr => super::qr_adapter::render(app),
        Page::Form(kind) => super::form_adapter::render(app, *kind),
    }
    let nav = w.global::<NavAdapter>();
    nav.set_page(page.name().into());
    nav.set_can_back(app.session.borrow().can_back());
}
