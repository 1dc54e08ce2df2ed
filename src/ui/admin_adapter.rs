//! AdminAdapter: the PIN pad behind the hidden logo gesture and the admin panel (device
//! id, content versions, sync status with 立即同步 and 回退到上一版本, recent errors, a test
//! pattern).

use std::rc::Rc;

use slint::{ComponentHandle as _, ModelRc, SharedString, VecModel};

use super::session::pin_matches;
use super::{AdminAdapter, App, AppWindow, MetaRow};

/// Longest PIN the pad takes.
const MAX_PIN: usize = 12;

/// The PIN being typed; never leaves this struct and is cleared on every outcome.
#[derive(Default)]
pub struct AdminState {
    pin: String,
}

pub fn connect(window: &AppWindow, app: &Rc<App>) {
    let admin = window.global::<AdminAdapter>();
    admin.set_open(false);
    let a = app.clone();
    admin.on_digit(move |d| {
        let len = {
            let mut st = a.admin.borrow_mut();
            if st.pin.len() < MAX_PIN {
                st.pin.push_str(&d);
            }
            st.pin.len()
        };
        if let Some(w) = a.window.upgrade() {
            let admin = w.global::<AdminAdapter>();
            admin.set_pin_length(i32::try_from(len).unwrap_or(0));
            admin.set_error(SharedString::default());
        }
    });
    let a = app.clone();
    admin.on_clear(move || {
        a.admin.borrow_mut().pin.clear();
        if let Some(w) = a.window.upgrade() {
            w.global::<AdminAdapter>().set_pin_length(0);
        }
    });
    let a = app.clone();
    admin.on_submit(move || {
        let pin = std::mem::take(&mut a.admin.borrow_mut().pin);
        let ok = pin_matches(&pin, &a.config.admin_pin_hash);
        let Some(w) = a.window.upgrade() else { return };
        let admin = w.global::<AdminAdapter>();
        admin.set_pin_length(0);
        if ok {
            unlock(&a);
        } else {
            a.log_error("管理面板：密码错误");
            admin.set_error("密码错误，请重新输入".into());
        }
    });
    let a = app.clone();
    admin.on_close(move || close(&a));
    let a = app.clone();
    admin.on_toggle_test_pattern(move || {
        if let Some(w) = a.window.upgrade() {
            let admin = w.global::<AdminAdapter>();
            admin.set_test_pattern(!admin.get_test_pattern());
        }
    });
    let a = app.clone();
    admin.on_resync(move || {
        let handle = a.sync.borrow().handle.clone();
        let note = match handle {
            Some(h) if h.status().enabled => {
                // A channel send: the sync worker does the work on its own thread.
                h.resync_now();
                "已请求同步，状态将自动刷新"
            }
            _ => "本机未配置同步服务器，无法同步",
        };
        if let Some(w) = a.window.upgrade() {
            w.global::<AdminAdapter>().set_sync_note(note.into());
        }
    });
    let a = app.clone();
    admin.on_rollback(move || rollback(&a));
}

/// Switches back to the previous content version on a thread (it takes the install lock,
/// which an install may hold for a while) and posts the outcome back to the UI thread.
fn rollback(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let admin = w.global::<AdminAdapter>();
    admin.set_busy(true);
    admin.set_sync_note("正在回退……".into());
    let config = app.config.clone();
    let weak = app.window.clone();
    let post = app.post.clone();
    let rolled_back = app.sync.borrow().rolled_back.clone();
    let spawned = std::thread::Builder::new().name("rollback".into()).spawn(move || {
        let outcome = crate::bundle::rollback(&config).map_err(|e| e.to_string());
        post(Box::new(move || {
            let Some(w) = weak.upgrade() else { return };
            let admin = w.global::<AdminAdapter>();
            admin.set_busy(false);
            match outcome {
                Ok(name) => {
                    admin.set_sync_note(
                        format!("已回退到 {name}，关闭管理面板后自动重启载入").into(),
                    );
                    rolled_back.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => admin.set_sync_note(format!("回退失败：{e}").into()),
            }
        }));
    });
    if let Err(e) = spawned {
        admin.set_busy(false);
        admin.set_sync_note(format!("回退失败：{e}").into());
    }
}

/// Shows the PIN pad.
pub fn open(app: &Rc<App>) {
    app.admin.borrow_mut().pin.clear();
    if let Some(w) = app.window.upgrade() {
        let admin = w.global::<AdminAdapter>();
        admin.set_unlocked(false);
        admin.set_pin_length(0);
        admin.set_error(SharedString::default());
        admin.set_test_pattern(false);
        admin.set_open(true);
    }
}

/// Shows the panel without a PIN (screenshots only).
pub fn open_unlocked(app: &Rc<App>) {
    open(app);
    unlock(app);
}

pub fn close(app: &Rc<App>) {
    app.admin.borrow_mut().pin.clear();
    if let Some(w) = app.window.upgrade() {
        let admin = w.global::<AdminAdapter>();
        admin.set_open(false);
        admin.set_unlocked(false);
        admin.set_test_pattern(false);
    }
}

fn unlock(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let admin = w.global::<AdminAdapter>();
    admin.set_sync_note(SharedString::default());
    refresh(app);
    let errors = app.errors.newest_first();
    let errors: Vec<SharedString> = if errors.is_empty() {
        vec!["暂无错误".into()]
    } else {
        errors.into_iter().map(SharedString::from).collect()
    };
    admin.set_errors(ModelRc::new(VecModel::from(errors)));
    admin.set_unlocked(true);
}

/// Fills the status rows again (the sync timer calls it while the panel is unlocked).
pub fn refresh(app: &Rc<App>) {
    let Some(w) = app.window.upgrade() else { return };
    let rows: Vec<MetaRow> = status_rows(app)
        .into_iter()
        .map(|(k, v)| MetaRow { key: k.into(), value: v.into() })
        .collect();
    w.global::<AdminAdapter>().set_rows(ModelRc::new(VecModel::from(rows)));
}

/// What the panel lists about this kiosk.
fn status_rows(app: &App) -> Vec<(String, String)> {
    let versions =
        if app.versions.is_empty() { "无".to_string() } else { app.versions.join("，") };
    let counts = app
        .store
        .as_ref()
        .and_then(|s| s.kind_counts().ok())
        .map(|c| c.iter().map(|(k, n)| format!("{} {n}", k.label())).collect::<Vec<_>>().join("，"))
        .unwrap_or_else(|| "无".into());
    let waiting = match app.desk.borrow().as_ref().map(|d| d.outbox.waiting()) {
        Some(Ok(n)) => format!("{n} 份（收到受理回执后删除）"),
        Some(Err(e)) => format!("无法读取：{e}"),
        None => "本机未配置提交通道".into(),
    };
    vec![
        ("设备编号".into(), app.config.device_id.clone()),
        ("所属辖区".into(), app.config.scope.as_str().to_string()),
        ("内容版本".into(), versions),
        ("内容条目".into(), counts),
        ("数据目录".into(), app.config.data_dir.display().to_string()),
        (
            "打印机".into(),
            if app.config.printer.is_empty() {
                "未配置".into()
            } else {
                app.config.printer.clone()
            },
        ),
        ("待发送表单".into(), waiting),
    ]
    .into_iter()
    .chain(super::sync_adapter::status_rows(app))
    .collect()
}
