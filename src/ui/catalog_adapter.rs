//! CatalogAdapter: the 公开目录 as 领域 → 一级事项 → 二级事项 → item, one level per screen.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::nav_adapter::show;
use super::session::Page;
use super::{App, AppWindow, CatRow, CatalogAdapter};
use crate::content::Kind;
use crate::store::{CatalogDomain, ListQuery, MAX_PAGE};

/// Row keys that open an item rather than a level.
const ITEM_PREFIX: &str = "item:";

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let cat = window.global::<CatalogAdapter>();
    let a = app.clone();
    cat.on_choose(move |key| {
        a.activity();
        if let Some(id) = key.strip_prefix(ITEM_PREFIX) {
            show(&a, Page::Reader(id.to_string()));
            return;
        }
        let Page::Catalog(mut path) = a.session.borrow().current() else { return };
        path.push(key.to_string());
        show(&a, Page::Catalog(path));
    });
    let a = app.clone();
    cat.on_up(move || {
        a.activity();
        let page = a.session.borrow_mut().back();
        super::nav_adapter::render(&a, &page);
    });
}

/// One screen of the catalogue: the rows to choose from and the hint above them.
fn level(
    app: &App,
    tree: &[CatalogDomain],
    path: &[String],
) -> (Vec<(String, String, String)>, &'static str) {
    let count = |n: u64| format!("{n} 项");
    match path {
        [] => (
            tree.iter().map(|d| (d.domain.clone(), d.label.clone(), count(d.count))).collect(),
            "请选择领域",
        ),
        [d] => {
            let rows = tree
                .iter()
                .find(|x| &x.domain == d)
                .map(|x| {
                    x.level1
                        .iter()
                        .map(|l| (l.name.clone(), l.name.clone(), count(l.count)))
                        .collect()
                })
                .unwrap_or_default();
            (rows, "请选择一级事项")
        }
        [d, l1] => {
            let level1 = tree
                .iter()
                .find(|x| &x.domain == d)
                .and_then(|x| x.level1.iter().find(|l| &l.name == l1));
            match level1 {
                Some(l) if !l.level2.is_empty() => (
                    l.level2
                        .iter()
                        .map(|l2| (l2.name.clone(), l2.name.clone(), count(l2.count)))
                        .collect(),
                    "请选择二级事项",
                ),
                _ => (
                    items(app, ListQuery::new(Kind::Catalog).domain(d.clone()).level1(l1.clone())),
                    "请选择事项查看详情",
                ),
            }
        }
        [d, l1, l2, ..] => (
            items(
                app,
                ListQuery::new(Kind::Catalog)
                    .domain(d.clone())
                    .level1(l1.clone())
                    .level2(l2.clone()),
            ),
            "请选择事项查看详情",
        ),
    }
}

fn items(app: &App, query: ListQuery) -> Vec<(String, String, String)> {
    let Some(store) = &app.store else { return Vec::new() };
    match store.list(&query.page(0, MAX_PAGE)) {
        Ok(page) => page
            .items
            .into_iter()
            .map(|s| (format!("{ITEM_PREFIX}{}", s.id), s.title, s.subtitle))
            .collect(),
        Err(e) => {
            app.log_error(format!("公开目录读取失败：{e}"));
            Vec::new()
        }
    }
}

pub fn render(app: &Rc<App>, path: &[String]) {
    let Some(w) = app.window.upgrade() else { return };
    let tree = match &app.store {
        Some(store) => store.catalog_tree().unwrap_or_else(|e| {
            app.log_error(format!("公开目录读取失败：{e}"));
            Vec::new()
        }),
        None => Vec::new(),
    };
    let (rows, hint) = level(app, &tree, path);
    // Breadcrumbs show labels (an empty 领域 reads 其他), not filter values.
    let mut crumbs = vec![SharedString::from("公开目录")];
    for (i, p) in path.iter().enumerate() {
        let label = if i == 0 {
            tree.iter().find(|d| &d.domain == p).map(|d| d.label.clone()).unwrap_or(p.clone())
        } else {
            p.clone()
        };
        crumbs.push(label.into());
    }
    let cat = w.global::<CatalogAdapter>();
    cat.set_crumbs(ModelRc::new(VecModel::from(crumbs)));
    cat.set_hint(if rows.is_empty() { "暂无内容".into() } else { hint.into() });
    let rows: Vec<CatRow> = rows
        .into_iter()
        .map(|(key, title, note)| CatRow {
            key: key.into(),
            title: title.into(),
            note: note.into(),
        })
        .collect();
    cat.set_rows(ModelRc::new(VecModel::from(rows)));
}
