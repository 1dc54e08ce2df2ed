//! KeyboardAdapter: the on-screen keyboard. Keys edit the session's focused target (the
//! search box or a form field); in 中文 mode letters compose pinyin and the candidate bar
//! offers words and characters from the input method.

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::session::{KeyMode, Target};
use super::{App, AppWindow, KeyboardAdapter};
use crate::ime::{Candidate, Ime};

/// Candidates shown on the bar.
const CANDIDATES: usize = 9;

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let kb = window.global::<KeyboardAdapter>();
    kb.set_visible(false);
    // Parse the lexicon off the UI thread so the first keystroke does not wait for it.
    let _ = std::thread::Builder::new().name("ime-load".into()).spawn(|| {
        Ime::shared();
    });

    let a = app.clone();
    kb.on_key(move |k| {
        a.activity();
        press(&a, &k);
    });
    let a = app.clone();
    kb.on_backspace(move || {
        a.activity();
        let handled = a.session.borrow_mut().composer.backspace();
        if !handled {
            edit(&a, |v| {
                v.pop();
            });
        }
        refresh(&a);
    });
    let a = app.clone();
    kb.on_space(move || {
        a.activity();
        if composing(&a) {
            pick(&a, 0);
        } else {
            edit(&a, |v| v.push(' '));
        }
    });
    let a = app.clone();
    kb.on_enter(move || {
        a.activity();
        if composing(&a) {
            let text = a.session.borrow_mut().composer.commit_raw();
            edit(&a, |v| v.push_str(&text));
            refresh(&a);
            return;
        }
        let target = a.session.borrow().target;
        match target {
            Some(Target::Field(i)) => match super::form_adapter::next_text_field(&a, i) {
                Some(next) => super::form_adapter::focus(&a, next),
                None => close(&a),
            },
            _ => close(&a),
        }
    });
    let a = app.clone();
    kb.on_pick(move |i| {
        a.activity();
        pick(&a, usize::try_from(i).unwrap_or(0));
    });
    let a = app.clone();
    kb.on_set_mode(move |m| {
        a.activity();
        let mode = KeyMode::from_index(m);
        let text = {
            let mut s = a.session.borrow_mut();
            s.mode = mode;
            s.composer.commit_raw()
        };
        if !text.is_empty() {
            edit(&a, |v| v.push_str(&text));
        }
        refresh(&a);
    });
    let a = app.clone();
    kb.on_close(move || {
        a.activity();
        close(&a);
    });
}

fn composing(app: &App) -> bool {
    !app.session.borrow().composer.is_empty()
}

fn candidates(app: &App) -> Vec<Candidate> {
    let s = app.session.borrow();
    if s.composer.letters().is_empty() {
        return Vec::new();
    }
    s.composer.candidates(Ime::shared(), CANDIDATES)
}

/// A key press, as if tapped.
pub fn press(app: &Rc<App>, k: &str) {
    let mode = app.session.borrow().mode;
    let mut chars = k.chars();
    if let (KeyMode::Pinyin, Some(c), None) = (mode, chars.next(), chars.next()) {
        if app.session.borrow_mut().composer.push(c) {
            refresh(app);
            return;
        }
    }
    edit(app, |v| v.push_str(k));
}

fn pick(app: &Rc<App>, i: usize) {
    let list = candidates(app);
    let Some(c) = list.get(i).or(list.first()) else {
        // No candidate for these letters: take them as typed.
        let text = app.session.borrow_mut().composer.commit_raw();
        edit(app, |v| v.push_str(&text));
        return;
    };
    let done = app.session.borrow_mut().composer.choose(c);
    match done {
        Some(text) => edit(app, |v| v.push_str(&text)),
        None => refresh(app),
    }
}

/// Changes the focused target's text and tells its page.
fn edit(app: &Rc<App>, change: impl FnOnce(&mut String)) {
    let target = app.session.borrow().target;
    match target {
        Some(Target::Search) => {
            let mut q = app.session.borrow().search.query.clone();
            change(&mut q);
            super::search_adapter::set_query(app, &q);
        }
        Some(Target::Field(i)) => {
            let mut v = super::form_adapter::value(app, i);
            change(&mut v);
            super::form_adapter::set_value(app, i, v);
        }
        None => {}
    }
    refresh(app);
}

/// Empties a target (the search box's 清空).
pub fn clear_target(app: &Rc<App>, target: Target) {
    app.session.borrow_mut().composer.clear();
    if app.session.borrow().target == Some(target) {
        refresh(app);
    }
}

/// Opens the keyboard on `target`.
pub fn open_for(app: &Rc<App>, target: Target) {
    if app.session.borrow().target != Some(target) {
        // Letters left from the previous field stay with it, not the new one.
        let text = app.session.borrow_mut().composer.commit_raw();
        if !text.is_empty() {
            edit(app, |v| v.push_str(&text));
        }
    }
    app.session.borrow_mut().target = Some(target);
    if target == Target::Search {
        super::search_adapter::render(app);
    }
    refresh(app);
}

/// Closes the keyboard; letters still being composed are kept as typed.
pub fn close(app: &Rc<App>) {
    if app.session.borrow().target.is_none() {
        if let Some(w) = app.window.upgrade() {
            w.global::<KeyboardAdapter>().set_visible(false);
        }
        return;
    }
    let text = app.session.borrow_mut().composer.commit_raw();
    if !text.is_empty() {
        edit(app, |v| v.push_str(&text));
    }
    let target = app.session.borrow_mut().target.take();
    match target {
        Some(Target::Field(_)) => super::form_adapter::refresh(app),
        Some(Target::Search) => super::search_adapter::render(app),
        None => {}
    }
    refresh(app);
}

/// Copies the keyboard state into the adapter.
pub fn refresh(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let kb = w.global::<KeyboardAdapter>();
    let list = candidates(app);
    let s = app.session.borrow();
    kb.set_visible(s.target.is_some());
    kb.set_mode(s.mode.index());
    kb.set_shift(s.shift);
    let target = s.target;
    let search_query = s.search.query.clone();
    drop(s);
    let (label, value) = match target {
        Some(Target::Search) => ("搜索".to_string(), search_query),
        Some(Target::Field(i)) => {
            (super::form_adapter::label(app, i), super::form_adapter::value(app, i))
        }
        None => (String::new(), String::new()),
    };
    let s = app.session.borrow();
    kb.set_target_label(label.into());
    kb.set_target_value(value.into());
    kb.set_composing(s.composer.preedit().into());
    kb.set_candidates(ModelRc::new(VecModel::from(
        list.iter().map(|c| SharedString::from(c.text.as_str())).collect::<Vec<_>>(),
    )));
}
