//! ReaderAdapter: the reading view of one item, its “扫码带走” QR code (the item's own URL
//! or the scope's template), related items, read-aloud and printing (off the UI thread).

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::nav_adapter::show;
use super::session::Page;
use super::view::{doc_view, speech_text, DocView, ViewBlock};
use super::{App, AppWindow, BlockRow, LinkRow, MetaRow, ReaderAdapter};
use crate::print::{Block, Printer, Printout};

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let reader = window.global::<ReaderAdapter>();
    reader.set_can_print(printer(app).is_some());
    reader.set_can_read_aloud(super::tts::available());
    let a = app.clone();
    reader.on_open_link(move |id| {
        a.activity();
        show(&a, Page::Reader(id.to_string()));
    });
    let a = app.clone();
    reader.on_read_aloud(move || {
        a.activity();
        let Some(doc) = current_doc(&a) else { return };
        let w = a.window.clone();
        let started = a.tts.borrow_mut().speak(&speech_text(&doc), move || {
            // Runs on the UI thread when speech ends by itself.
            if let Some(w) = w.upgrade() {
                w.global::<ReaderAdapter>().set_reading_aloud(false);
            }
        });
        if let Some(w) = a.window.upgrade() {
            let reader = w.global::<ReaderAdapter>();
            match started {
                Ok(()) => {
                    reader.set_reading_aloud(true);
                    reader.set_status(SharedString::default());
                }
                Err(e) => {
                    a.log_error(format!("朗读失败：{e:#}"));
                    reader.set_status("朗读暂不可用".into());
                }
            }
        }
    });
    let a = app.clone();
    reader.on_stop_reading(move || {
        a.activity();
        stop_reading(&a);
    });
    let a = app.clone();
    reader.on_print(move || {
        a.activity();
        let Some(printer) = printer(&a) else { return };
        let Some(doc) = current_doc(&a) else { return };
        let url = canonical_url(&a, &doc);
        let caption = format!("{} · {}", a.branding.zone_name, doc.kind_label);
        let meta: Vec<(String, String)> =
            doc.meta.iter().map(|m| (m.key.clone(), m.value.clone())).collect();
        let body = doc
            .blocks
            .iter()
            .map(|b| match b {
                ViewBlock::Heading(t) => Block::Heading(t.clone()),
                ViewBlock::Paragraph(t) => Block::Paragraph(t.clone()),
                ViewBlock::Row { cells, .. } => Block::Row(cells.clone()),
            })
            .collect();
        let printout =
            Printout::document(&caption, &doc.title, &doc.banner, &meta, body, url.as_deref());
        set_status(&a, "正在发送到打印机……");
        let post = a.post.clone();
        let w = a.window.clone();
        let errors = a.errors.clone();
        printer.print_in_background(printout, move |outcome| {
            post(Box::new(move || {
                let text = match outcome {
                    Ok(sent) => sent.message(),
                    Err(e) => {
                        errors.push(format!("打印失败：{e:#}"));
                        crate::print::FAILED.to_string()
                    }
                };
                if let Some(w) = w.upgrade() {
                    w.global::<ReaderAdapter>().set_status(text.into());
                }
            }));
        });
    });
}

/// The configured printer with the page limit in force (`app.device` already holds this
/// device's overrides), or None: no printer, no print button.
pub(super) fn printer(app: &App) -> Option<Printer> {
    Printer::new(&app.config.printer, app.device.print_page_limit)
}

/// The “扫码带走” URL: the item's own, else the scope's `item_url` template, else none.
fn canonical_url(app: &App, doc: &DocView) -> Option<String> {
    app.branding.item_url_for(&doc.id, doc.url.as_deref())
}

fn set_status(app: &App, text: &str) {
    if let Some(w) = app.window.upgrade() {
        w.global::<ReaderAdapter>().set_status(text.into());
    }
}

fn current_doc(app: &App) -> Option<DocView> {
    let Page::Reader(id) = app.session.borrow().current() else { return None };
    load(app, &id)
}

fn load(app: &App, id: &str) -> Option<DocView> {
    let store = app.store.as_ref()?;
    match store.get(id) {
        Ok(Some(detail)) => Some(doc_view(&detail)),
        Ok(None) => None,
        Err(e) => {
            app.log_error(format!("读取 {id} 失败：{e}"));
            None
        }
    }
}

/// Stops read-aloud (leaving the page, the stop button, an idle wipe).
pub fn stop_reading(app: &App) {
    app.tts.borrow_mut().stop();
    if let Some(w) = app.window.upgrade() {
        w.global::<ReaderAdapter>().set_reading_aloud(false);
    }
}

pub fn render(app: &Rc<App>, id: &str) {
    let Some(w) = app.window.upgrade() else { return };
    let reader = w.global::<ReaderAdapter>();
    reader.set_status(SharedString::default());
    let doc = load(app, id).unwrap_or_else(|| DocView {
        id: id.to_string(),
        kind: crate::content::Kind::Notice,
        kind_label: String::new(),
        title: "该内容暂时无法显示".into(),
        banner: String::new(),
        meta: Vec::new(),
        blocks: vec![ViewBlock::Paragraph("内容可能已更新或撤下，请返回后重新查找。".into())],
        links: Vec::new(),
        url: None,
    });
    reader.set_id(doc.id.as_str().into());
    reader.set_kind_label(doc.kind_label.as_str().into());
    reader.set_title(doc.title.as_str().into());
    reader.set_banner(doc.banner.as_str().into());
    let meta: Vec<MetaRow> = doc
        .meta
        .iter()
        .map(|m| MetaRow { key: m.key.as_str().into(), value: m.value.as_str().into() })
        .collect();
    reader.set_meta(ModelRc::new(VecModel::from(meta)));
    let blocks: Vec<BlockRow> = doc
        .blocks
        .iter()
        .map(|b| match b {
            ViewBlock::Heading(t) => {
                BlockRow { kind: 0, text: t.as_str().into(), cells: ModelRc::default() }
            }
            ViewBlock::Paragraph(t) => {
                BlockRow { kind: 1, text: t.as_str().into(), cells: ModelRc::default() }
            }
            ViewBlock::Row { cells, header } => BlockRow {
                kind: if *header { 3 } else { 2 },
                text: SharedString::default(),
                cells: ModelRc::new(VecModel::from(
                    cells.iter().map(SharedString::from).collect::<Vec<_>>(),
                )),
            },
        })
        .collect();
    reader.set_blocks(ModelRc::new(VecModel::from(blocks)));
    let links: Vec<LinkRow> = doc
        .links
        .iter()
        .map(|l| LinkRow {
            id: l.id.as_str().into(),
            kind_label: l.kind_label.as_str().into(),
            title: l.title.as_str().into(),
        })
        .collect();
    reader.set_links(ModelRc::new(VecModel::from(links)));
    let url = canonical_url(app, &doc).unwrap_or_default();
    reader.set_url(url.as_str().into());
    reader.set_qr(if url.is_empty() { slint::Image::default() } else { super::qr::image(&url) });
}
