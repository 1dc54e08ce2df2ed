//! ListAdapter: one kind's list with 领域 and 效力 filters and paging.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, VecModel};

use super::nav_adapter::{replace, show};
use super::session::{ListState, Page};
use super::view::{page_count, row_view, rows_per_page};
use super::{App, AppWindow, FilterChip, ListAdapter, ListRow, Theme};
use crate::content::{Kind, Validity};
use crate::store::ListQuery;

/// The 效力 filter choices, after 全部.
const VALIDITIES: [Validity; 3] = [Validity::Valid, Validity::Expired, Validity::Repealed];

fn current(app: &App) -> Option<ListState> {
    match app.session.borrow().current() {
        Page::List(state) => Some(state),
        _ => None,
    }
}

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let list = window.global::<ListAdapter>();
    let a = app.clone();
    list.on_pick_domain(move |i| {
        a.activity();
        let Some(mut state) = current(&a) else { return };
        let domains = domain_filters(&a, state.kind);
        state.domain = usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| domains.get(i).cloned())
            .map(|d| d.0);
        state.page = 0;
        replace(&a, Page::List(state));
    });
    let a = app.clone();
    list.on_pick_validity(move |i| {
        a.activity();
        let Some(mut state) = current(&a) else { return };
        state.validity = usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| VALIDITIES.get(i).copied());
        state.page = 0;
        replace(&a, Page::List(state));
    });
    let a = app.clone();
    list.on_prev_page(move || {
        a.activity();
        let Some(mut state) = current(&a) else { return };
        state.page = state.page.saturating_sub(1);
        replace(&a, Page::List(state));
    });
    let a = app.clone();
    list.on_next_page(move || {
        a.activity();
        let Some(mut state) = current(&a) else { return };
        state.page += 1;
        replace(&a, Page::List(state));
    });
    let a = app.clone();
    list.on_open(move |id| {
        a.activity();
        show(&a, Page::Reader(id.to_string()));
    });
    let a = app.clone();
    list.on_search(move || {
        a.activity();
        let kind = current(&a).map(|s| s.kind);
        super::search_adapter::open_in(&a, kind);
    });
}

/// (filter value, label with count) of each 领域 that holds items of `kind`.
fn domain_filters(app: &App, kind: Kind) -> Vec<(String, String)> {
    let Some(store) = &app.store else { return Vec::new() };
    match store.domain_counts(kind) {
        Ok(counts) => {
            counts.into_iter().map(|c| (c.domain, format!("{} {}", c.label, c.count))).collect()
        }
        Err(e) => {
            app.log_error(format!("领域统计读取失败：{e}"));
            Vec::new()
        }
    }
}

pub fn render(app: &Rc<App>, state: &ListState) {
    let Some(w) = app.window.upgrade() else { return };
    let theme = w.global::<Theme>();
    let per_page = rows_per_page(theme.get_portrait(), theme.get_care());
    let list = w.global::<ListAdapter>();
    list.set_title(state.kind.label().into());

    let domains = domain_filters(app, state.kind);
    let mut chips =
        vec![FilterChip { label: "全部领域".into(), selected: state.domain.is_none() }];
    // A single 领域 is no choice: the chips would only repeat the title.
    if domains.len() > 1 {
        chips.extend(domains.iter().map(|(d, label)| FilterChip {
            label: label.as_str().into(),
            selected: state.domain.as_deref() == Some(d.as_str()),
        }));
    } else {
        chips.clear();
    }
    list.set_domains(ModelRc::new(VecModel::from(chips)));

    let validities: Vec<FilterChip> = if state.kind == Kind::Policy {
        std::iter::once(FilterChip { label: "全部".into(), selected: state.validity.is_none() })
            .chain(VALIDITIES.iter().map(|v| FilterChip {
                label: v.label().into(),
                selected: state.validity == Some(*v),
            }))
            .collect()
    } else {
        Vec::new()
    };
    list.set_validities(ModelRc::new(VecModel::from(validities)));

    let mut query = ListQuery::new(state.kind).page(state.page * per_page, per_page);
    if let Some(d) = &state.domain {
        query = query.domain(d.clone());
    }
    if let Some(v) = state.validity {
        query = query.validity(v);
    }
    let page = match &app.store {
        Some(store) => match store.list(&query) {
            Ok(p) => Some(p),
            Err(e) => {
                app.log_error(format!("列表读取失败：{e}"));
                None
            }
        },
        None => None,
    };
    let (rows, total) = match page {
        Some(p) => (p.items.iter().map(row_view).collect::<Vec<_>>(), p.total),
        None => (Vec::new(), 0),
    };
    let rows: Vec<ListRow> = rows
        .into_iter()
        .map(|r| ListRow {
            id: r.id.into(),
            title: r.title.into(),
            line1: r.line1.into(),
            line2: Default::default(),
            badge: r.badge.into(),
        })
        .collect();
    list.set_rows(ModelRc::new(VecModel::from(rows)));
    list.set_note(format!("共 {total} 条").into());
    list.set_page(i32::try_from(state.page + 1).unwrap_or(i32::MAX));
    list.set_page_count(i32::try_from(page_count(total, per_page)).unwrap_or(i32::MAX));
}
