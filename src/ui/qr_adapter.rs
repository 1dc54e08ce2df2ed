//! QrAdapter: 扫码服务, the city's online platforms as named QR codes.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, VecModel};

use super::{App, AppWindow, QrAdapter, QrRow};
use crate::content::{Body, Kind};
use crate::store::{ListQuery, MAX_PAGE};

pub fn connect(window: &AppWindow, _app: &Rc<App>) {
    // Nothing to wire: the page only shows codes. Clear the preview data.
    window.global::<QrAdapter>().set_links(ModelRc::default());
}

/// (title, description, target URL) of every 二维码 link, in list order.
fn links(app: &App) -> Vec<(String, String, String)> {
    let Some(store) = &app.store else { return Vec::new() };
    let page = match store.list(&ListQuery::new(Kind::QrLink).page(0, MAX_PAGE)) {
        Ok(p) => p,
        Err(e) => {
            app.log_error(format!("扫码服务读取失败：{e}"));
            return Vec::new();
        }
    };
    page.items
        .iter()
        .filter_map(|s| match store.get(&s.id) {
            Ok(Some(d)) => match d.item.body {
                Body::QrLink(q) => {
                    Some((d.item.title, q.description.unwrap_or_default(), q.target))
                }
                _ => None,
            },
            Ok(None) => None,
            Err(e) => {
                app.log_error(format!("读取 {} 失败：{e}", s.id));
                None
            }
        })
        .collect()
}

pub fn render(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let rows: Vec<QrRow> = links(app)
        .into_iter()
        .map(|(title, description, url)| QrRow {
            code: super::qr::image(&url),
            title: title.into(),
            description: description.into(),
            url: url.into(),
        })
        .collect();
    w.global::<QrAdapter>().set_links(ModelRc::new(VecModel::from(rows)));
}
