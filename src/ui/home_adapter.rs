//! HomeAdapter: the function tiles (统一服务功能) and the strip of current 通知公告.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, VecModel};

use super::nav_adapter::show;
use super::session::{FormKind, ListState, Page};
use super::view::{function_face, function_from_id, function_id};
use super::{App, AppWindow, HomeAdapter, NoticeRow, TileData};
use crate::content::Function;

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let home = window.global::<HomeAdapter>();
    let tiles: Vec<TileData> = app
        .functions
        .enabled
        .iter()
        .map(|f| {
            let (glyph, note) = function_face(*f);
            TileData {
                id: function_id(*f).into(),
                label: f.label().into(),
                glyph: glyph.into(),
                note: note.into(),
            }
        })
        .collect();
    home.set_tiles(ModelRc::new(VecModel::from(tiles)));

    let a = app.clone();
    home.on_open_function(move |id| {
        a.activity();
        if let Some(f) = function_from_id(&id) {
            show(&a, function_page(f));
        }
    });
    let a = app.clone();
    home.on_open_item(move |id| {
        a.activity();
        show(&a, Page::Reader(id.to_string()));
    });
    let a = app.clone();
    home.on_open_search(move || {
        a.activity();
        super::search_adapter::open(&a);
    });
}

/// The page a function tile opens.
pub fn function_page(f: Function) -> Page {
    match f {
        Function::Catalog => Page::Catalog(Vec::new()),
        Function::Request => Page::Form(FormKind::Request),
        Function::Suggestion => Page::Form(FormKind::Suggestion),
        Function::QrServices => Page::Qr,
        other => match other.kind() {
            Some(kind) => Page::List(ListState::new(kind)),
            None => Page::Home,
        },
    }
}

/// Refreshes the notice strip (notices come and go with their display window).
pub fn render(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let notices = match &app.store {
        Some(store) => match store.notices_showing(chrono::Utc::now()) {
            Ok(n) => n,
            Err(e) => {
                app.log_error(format!("通知公告读取失败：{e}"));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let rows: Vec<NoticeRow> = notices
        .iter()
        .map(|n| NoticeRow {
            id: n.id.as_str().into(),
            title: n.title.as_str().into(),
            date: n.date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default().into(),
            pinned: n.subtitle.starts_with("置顶"),
        })
        .collect();
    w.global::<HomeAdapter>().set_notices(ModelRc::new(VecModel::from(rows)));
}
