//! SearchAdapter: the search box, suggestions as the resident types, kind filters and
//! hits with highlighted snippets. Queries go to the search worker; answers come back
//! through the worker's post function and only the newest one is shown.

use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::nav_adapter::show;
use super::session::{Page, Target};
use super::view::validity_badge;
use super::worker::{Answer, Finder, Hit, Piece};
use super::{App, AppWindow, FilterChip, HitRow, SearchAdapter, Span};
use crate::content::Kind;
use crate::search::{Filters, Fragment, SearchRequest, Searcher};

/// The kinds a resident can filter to, after 全部.
const KINDS: [Kind; 7] = [
    Kind::Policy,
    Kind::Interpretation,
    Kind::Guide,
    Kind::Catalog,
    Kind::Faq,
    Kind::Notice,
    Kind::Gazette,
];

/// The search engine over a content version's index; `None` (search says it is not
/// available) when the index cannot be opened.
pub fn engine_finder(index_dir: &Path) -> Option<Box<dyn Finder>> {
    match Searcher::open(index_dir) {
        Ok(s) => Some(Box::new(Engine(s))),
        Err(e) => {
            tracing::warn!("search is not available: {e}");
            None
        }
    }
}

/// [`Finder`] over the search engine.
struct Engine(Searcher);

fn pieces(fragments: &[Fragment]) -> Vec<Piece> {
    fragments.iter().map(|f| Piece { text: f.text.clone(), highlight: f.highlight }).collect()
}

impl Finder for Engine {
    fn find(
        &mut self,
        query: &str,
        kinds: &[Kind],
        limit: usize,
    ) -> anyhow::Result<(Vec<Hit>, u64)> {
        let req = SearchRequest {
            query: query.to_string(),
            filters: Filters { kinds: kinds.to_vec(), ..Filters::default() },
            limit,
            offset: 0,
        };
        let res = self.0.search(&req)?;
        let hits = res
            .hits
            .iter()
            .map(|h| Hit {
                id: h.id.clone(),
                kind: h.kind,
                validity: h.validity,
                title: if h.title_fragments.is_empty() {
                    vec![Piece { text: h.title.clone(), highlight: false }]
                } else {
                    pieces(&h.title_fragments)
                },
                snippet: pieces(&h.snippet),
            })
            .collect();
        Ok((hits, res.total as u64))
    }

    fn suggest(&mut self, prefix: &str, limit: usize) -> Vec<String> {
        self.0.suggest(prefix, limit).into_iter().map(|s| s.title).collect()
    }
}

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let search = window.global::<SearchAdapter>();
    let a = app.clone();
    search.on_focus_box(move || {
        a.activity();
        super::keyboard_adapter::open_for(&a, Target::Search);
    });
    let a = app.clone();
    search.on_pick_suggestion(move |s| {
        a.activity();
        set_query(&a, &s);
    });
    let a = app.clone();
    search.on_toggle_chip(move |i| {
        a.activity();
        let kind = usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| KINDS.get(i).copied());
        {
            let mut s = a.session.borrow_mut();
            s.search.kinds = kind.into_iter().collect();
        }
        let query = a.session.borrow().search.query.clone();
        set_query(&a, &query);
    });
    let a = app.clone();
    search.on_open(move |id| {
        a.activity();
        show(&a, Page::Reader(id.to_string()));
    });
    let a = app.clone();
    search.on_clear(move || {
        a.activity();
        super::keyboard_adapter::clear_target(&a, Target::Search);
        set_query(&a, "");
    });
}

/// Opens the search page with the keyboard on the box.
pub fn open(app: &Rc<App>) {
    open_in(app, None);
}

/// Opens the search page filtered to one kind (the search button of a list).
pub fn open_in(app: &Rc<App>, kind: Option<Kind>) {
    app.session.borrow_mut().search.kinds = kind.into_iter().collect();
    app.session.borrow_mut().target = Some(Target::Search);
    show(app, Page::Search);
    super::keyboard_adapter::open_for(app, Target::Search);
    let query = app.session.borrow().search.query.clone();
    set_query(app, &query);
}

/// Sets the query (typed, picked or cleared) and asks the worker for hits.
pub fn set_query(app: &Rc<App>, query: &str) {
    let (generation, kinds) = {
        let mut s = app.session.borrow_mut();
        s.search.query = query.to_string();
        s.search.generation += 1;
        (s.search.generation, s.search.kinds.clone())
    };
    render(app);
    let Some(w) = app.window.upgrade() else { return };
    let search = w.global::<SearchAdapter>();
    if query.trim().is_empty() {
        search.set_hits(ModelRc::default());
        search.set_suggestions(ModelRc::default());
        search.set_busy(false);
        search.set_note(if app.search.available() {
            "请输入要查找的内容".into()
        } else {
            "搜索暂不可用".into()
        });
        return;
    }
    if !app.search.available() {
        search.set_note("搜索暂不可用".into());
        return;
    }
    search.set_busy(true);
    let weak = app.window.clone();
    let latest = app.search.latest();
    app.search.ask(generation, query.to_string(), kinds, move |answer: Answer| {
        if answer.generation != latest.load(Ordering::SeqCst) {
            return;
        }
        if let Some(w) = weak.upgrade() {
            show_answer(&w, answer);
        }
    });
}

fn spans(pieces: &[Piece]) -> ModelRc<Span> {
    ModelRc::new(VecModel::from(
        pieces
            .iter()
            .map(|p| Span { text: p.text.as_str().into(), hl: p.highlight })
            .collect::<Vec<_>>(),
    ))
}

fn show_answer(w: &AppWindow, answer: Answer) {
    let search = w.global::<SearchAdapter>();
    search.set_busy(false);
    let hits: Vec<HitRow> = answer
        .hits
        .iter()
        .map(|h| HitRow {
            id: h.id.as_str().into(),
            kind_label: h.kind.label().into(),
            title: spans(&h.title),
            snippet: spans(&h.snippet),
            badge: validity_badge(h.validity).into(),
            plain: h.plain_title().into(),
        })
        .collect();
    let note = match (&answer.error, answer.total) {
        (Some(_), _) => "搜索出错，请换个说法再试".to_string(),
        (None, 0) => format!("没有找到与“{}”有关的内容，请换个关键词或检查拼音", answer.query),
        (None, n) => format!("找到 {n} 条与“{}”有关的结果", answer.query),
    };
    if let Some(e) = &answer.error {
        tracing::warn!("search failed: {e}");
    }
    search.set_note(note.into());
    search.set_hits(ModelRc::new(VecModel::from(hits)));
    let suggestions: Vec<SharedString> =
        answer.suggestions.iter().filter(|s| **s != answer.query).map(SharedString::from).collect();
    search.set_suggestions(ModelRc::new(VecModel::from(suggestions)));
}

/// Redraws the box and the filter chips from the session.
pub fn render(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let search = w.global::<SearchAdapter>();
    let s = app.session.borrow();
    search.set_query(s.search.query.as_str().into());
    search.set_focused(s.target == Some(Target::Search));
    let chips: Vec<FilterChip> =
        std::iter::once(FilterChip { label: "全部".into(), selected: s.search.kinds.is_empty() })
            .chain(KINDS.iter().map(|k| FilterChip {
                label: k.label().into(),
                selected: s.search.kinds.contains(k),
            }))
            .collect();
    search.set_chips(ModelRc::new(VecModel::from(chips)));
}
