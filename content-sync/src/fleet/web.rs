//! The dashboard's HTTP side: server-rendered pages with inline CSS and SVG sparklines (no
//! script, no CDN), login with argon2-checked passwords and an HttpOnly SameSite=Strict
//! session cookie, a CSRF token in every form, and Prometheus `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kiosk::bundle::format::Envelope;
use kiosk::content::ScopeCode;
use kiosk::sync::protocol::{topic, Action, Command, Target};
use rumqttc::QoS;
use tiny_http::{Header, Request, Response, Server};

use super::audit::{self, COLUMNS};
use super::db::{self, Role, Session};
use super::state::{bytes, Device, Fleet, SentCommand};
use super::App;

const COOKIE: &str = "fleet_session";
const WORKERS: usize = 4;
/// Device rows per page of the fleet page (alerting devices first).
pub const PAGE_SIZE: usize = 100;

/// Starts the worker threads answering `server`. With `metrics_only`, only `/metrics` is
/// served, without login.
pub fn serve(
    app: Arc<App>,
    server: Server,
    metrics_only: bool,
) -> anyhow::Result<Vec<std::thread::JoinHandle<()>>> {
    let server = Arc::new(server);
    let mut threads = Vec::new();
    for i in 0..WORKERS {
        let (app, server) = (app.clone(), server.clone());
        threads.push(std::thread::Builder::new().name(format!("fleet-web-{i}")).spawn(
            move || loop {
                if app.stop.load(Ordering::Relaxed) {
                    return;
                }
                match server.recv_timeout(Duration::from_millis(200)) {
                    Ok(Some(req)) => {
                        if !metrics_only {
                            handle(&app, req);
                        } else if req.url() == "/metrics" {
                            let _ = req.respond(with_header(
                                Response::from_string(metrics(&app)),
                                "Content-Type",
                                "text/plain; version=0.0.4",
                            ));
                        } else {
                            let _ = req
                                .respond(Response::from_string("not found").with_status_code(404));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!("dashboard: {e}"),
                }
            },
        )?);
    }
    Ok(threads)
}

fn with_header<R: std::io::Read>(r: Response<R>, name: &str, value: &str) -> Response<R> {
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => r.with_header(h),
        Err(()) => r,
    }
}

fn html_response(status: u16, body: String) -> Response<std::io::Cursor<Vec<u8>>> {
    let r = Response::from_string(body).with_status_code(status);
    let r = with_header(r, "Content-Type", "text/html; charset=utf-8");
    let r = with_header(
        r,
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'",
    );
    with_header(r, "X-Frame-Options", "DENY")
}

fn redirect(to: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    with_header(Response::from_string(String::new()).with_status_code(303), "Location", to)
}

/// Answers one request.
fn handle(app: &App, mut req: Request) {
    let resp = route(app, &mut req).unwrap_or_else(|e| {
        tracing::warn!("dashboard {} {}: {e:#}", req.method(), req.url());
        html_response(
            500,
            page("错误", None, &format!("<p>服务器错误：{}</p>", esc(&format!("{e:#}")))),
        )
    });
    let _ = req.respond(resp);
}

fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .flat_map(|h| {
            h.value.as_str().split(';').map(str::trim).map(str::to_string).collect::<Vec<_>>()
        })
        .find_map(|c| c.strip_prefix(&format!("{COOKIE}=")).map(str::to_string))
}

fn form(req: &mut Request) -> anyhow::Result<BTreeMap<String, String>> {
    let mut body = String::new();
    req.as_reader().take(64 * 1024).read_to_string(&mut body)?;
    Ok(parse_query(&body))
}

fn parse_query(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn route(app: &App, req: &mut Request) -> anyhow::Result<Response<std::io::Cursor<Vec<u8>>>> {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let query = parse_query(query);
    let post = *req.method() == tiny_http::Method::Post;
    if path == "/login" {
        return if post { login(app, req) } else { Ok(html_response(200, login_page(None))) };
    }
    let token = cookie(req);
    let session = match &token {
        Some(t) => db::session(&*lock(&app.conn)?, t)?,
        None => None,
    };
    let Some(session) = session else {
        // Pages send people to the login form; anything else gets a plain 401.
        return Ok(if post || path == "/metrics" {
            Response::from_string("login required").with_status_code(401)
        } else {
            redirect("/login")
        });
    };
    if post {
        let f = form(req)?;
        if f.get("csrf") != Some(&session.csrf) {
            return Ok(html_response(
                403,
                page(
                    "拒绝",
                    Some(&session),
                    "<p>表单已过期（CSRF 校验失败），请刷新页面后重试。</p>",
                ),
            ));
        }
        if path == "/logout" {
            if let Some(t) = &token {
                db::end_session(&*lock(&app.conn)?, t)?;
            }
            return Ok(with_header(
                redirect("/login"),
                "Set-Cookie",
                &format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
            ));
        }
        if let Some(id) = path.strip_prefix("/device/").and_then(|r| r.strip_suffix("/command")) {
            return command(app, &session, id, &f);
        }
        return Ok(html_response(404, page("未找到", Some(&session), "<p>没有这个页面。</p>")));
    }
    match path {
        "/" => Ok(html_response(200, fleet_page(app, &session, &query)?)),
        "/alerts" => Ok(html_response(200, alerts_page(app, &session)?)),
        "/commands" => Ok(html_response(200, commands_page(app, &session)?)),
        "/audit" => Ok(html_response(200, standard_page(app, &session, &query)?)),
        "/audit.csv" => {
            let r = Response::from_data(standard_csv(app, &query)?);
            let r = with_header(r, "Content-Type", "text/csv; charset=utf-8");
            Ok(with_header(r, "Content-Disposition", "attachment; filename=\"wutongyi-audit.csv\""))
        }
        "/metrics" => Ok(with_header(
            Response::from_string(metrics(app)),
            "Content-Type",
            "text/plain; version=0.0.4",
        )),
        _ => match path.strip_prefix("/device/") {
            Some(rest) if rest.ends_with("/screenshot.png") => {
                let id = url_decode(rest.trim_end_matches("/screenshot.png"));
                Ok(match db::screenshot(&*lock(&app.conn)?, &id)? {
                    Some((png, _)) => with_header(
                        with_header(Response::from_data(png), "Content-Type", "image/png"),
                        "Cache-Control",
                        "no-store",
                    ),
                    None => html_response(
                        404,
                        page("未找到", Some(&session), "<p>这台设备还没有截屏。</p>"),
                    ),
                })
            }
            Some(id) => Ok(match device_page(app, &session, &url_decode(id))? {
                Some(body) => html_response(200, body),
                None => html_response(404, page("未找到", Some(&session), "<p>没有这台设备。</p>")),
            }),
            None => Ok(html_response(404, page("未找到", Some(&session), "<p>没有这个页面。</p>"))),
        },
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| anyhow::anyhow!("a dashboard lock is poisoned"))
}

fn login(app: &App, req: &mut Request) -> anyhow::Result<Response<std::io::Cursor<Vec<u8>>>> {
    let f = form(req)?;
    let (user, password) = (
        f.get("user").cloned().unwrap_or_default(),
        f.get("password").cloned().unwrap_or_default(),
    );
    let conn = lock(&app.conn)?;
    if db::check_password(&conn, &user, &password)?.is_none() {
        tracing::info!("failed login for {user:?}");
        return Ok(html_response(401, login_page(Some("用户名或密码错误"))));
    }
    let (token, _) = db::new_session(&conn, &user, 12)?;
    let secure = if app.args.secure_cookie { "; Secure" } else { "" };
    Ok(with_header(
        redirect("/"),
        "Set-Cookie",
        &format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"),
    ))
}

fn command(
    app: &App,
    session: &Session,
    device: &str,
    f: &BTreeMap<String, String>,
) -> anyhow::Result<Response<std::io::Cursor<Vec<u8>>>> {
    if session.role != Role::Operator {
        return Ok(html_response(
            403,
            page(
                "无权限",
                Some(session),
                "<p>只读账号不能发送指令 (read-only accounts cannot send commands)。</p>",
            ),
        ));
    }
    if !kiosk::sync::protocol::is_topic_safe(device) {
        return Ok(html_response(400, page("错误", Some(session), "<p>设备编号无效。</p>")));
    }
    if app.keys.is_empty() {
        return Ok(html_response(
            503,
            page(
                "无法发送",
                Some(session),
                "<p>看板未配置签名密钥 (--sign-key)，不能发送指令。</p>",
            ),
        ));
    }
    let action = match f.get("action").map(String::as_str) {
        Some("resync") => Action::Resync,
        Some("restart") => Action::Restart,
        Some("screenshot") => Action::Screenshot,
        Some("announce") => {
            Action::Announce { text: f.get("text").cloned().unwrap_or_default(), seconds: 60 }
        }
        _ => return Ok(html_response(400, page("错误", Some(session), "<p>未知指令。</p>"))),
    };
    let now = Utc::now();
    let cmd = Command {
        id: format!("{}-{:08x}", now.format("%Y%m%dT%H%M%S"), rand::random::<u32>()),
        target: Target::Device(device.to_string()),
        issued: now,
        expires: now + chrono::Duration::seconds(app.args.command_valid_for),
        action: action.clone(),
    };
    let refs: Vec<_> = app.keys.iter().collect();
    let env = Envelope::sign(&cmd, &refs)?;
    let label = serde_json::to_value(&action)?
        .get("action")
        .and_then(|a| a.as_str())
        .unwrap_or("?")
        .to_string();
    // Audit first: a command that left must be on record even if the process dies next.
    db::audit(&*lock(&app.conn)?, &session.user, device, &cmd.id, &label)?;
    // Listed before it leaves: a kiosk on the same LAN can ack within a millisecond, and an
    // ack for a command not yet listed would find nothing to attach to.
    {
        let mut fleet = lock(&app.fleet)?;
        fleet.commands.push_front(SentCommand {
            id: cmd.id.clone(),
            device: device.to_string(),
            action: label,
            operator: session.user.clone(),
            at: now,
            ack: None,
        });
        fleet.commands.truncate(1000);
    }
    let sent = serde_json::to_vec(&env).map_err(anyhow::Error::from).and_then(|bytes| {
        Ok(app.client.try_publish(topic::dev(device, "cmd"), QoS::AtLeastOnce, false, bytes)?)
    });
    if let Err(e) = sent {
        lock(&app.fleet)?.commands.retain(|c| c.id != cmd.id);
        return Err(e);
    }
    let anchor = if matches!(action, Action::Screenshot) { "#screenshot" } else { "" };
    Ok(redirect(&format!("/device/{}{anchor}", url_encode(device))))
}

const CSS: &str = "body{font-family:sans-serif;margin:0;background:#f4f5f7;color:#222}header{background:#b3241b;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center}header a{color:#fff}main{padding:1em}table{border-collapse:collapse;background:#fff;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}.on{color:#18794e}.off{color:#b3241b;font-weight:bold}.warn{background:#fff4e5}.card{background:#fff;padding:.8em;margin:.5em 0;border:1px solid #ddd}svg{background:#fafafa;border:1px solid #eee}form.inline{display:inline}button{margin:.2em}.muted{color:#777}.charts{display:flex;flex-wrap:wrap;gap:.5em}.charts .card{margin:0}";

fn page(title: &str, session: Option<&Session>, body: &str) -> String {
    let nav = match session {
        Some(s) => format!(
            "<a href=\"/\">设备总览</a><a href=\"/alerts\">告警</a><a href=\"/audit\">五统一审计</a><a href=\"/commands\">指令记录</a><span>{} ({})</span><form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>退出</button></form>",
            esc(&s.user),
            s.role.as_str(),
            esc(&s.csrf)
        ),
        None => String::new(),
    };
    format!("<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{} · 政务公开一体机运维</title><style>{CSS}</style></head><body><header><strong>政务公开一体机运维</strong>{nav}</header><main><h1>{}</h1>{body}</main></body></html>", esc(title), esc(title))
}

fn login_page(error: Option<&str>) -> String {
    let err = error.map(|e| format!("<p class=\"off\">{}</p>", esc(e))).unwrap_or_default();
    page("登录", None, &format!("{err}<form method=\"post\" action=\"/login\" class=\"card\"><p><label>用户名 <input name=\"user\" id=\"user\" autocomplete=\"username\"></label></p><p><label>密码 <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\"></label></p><button id=\"login\">登录</button></form>"))
}

fn status_cell(online: bool) -> &'static str {
    if online {
        "<span class=\"on\">在线 online</span>"
    } else {
        "<span class=\"off\">离线 offline</span>"
    }
}

/// A device on the fleet page: the device, whether online, its alert labels.
type Row<'a> = (&'a Device, bool, Vec<String>);

fn fleet_page(
    app: &App,
    session: &Session,
    query: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let now = Utc::now();
    let fleet = lock(&app.fleet)?;
    let q = query.get("q").map(|s| s.trim().to_string()).unwrap_or_default();
    let only = query.get("status").cloned().unwrap_or_default();
    // Counts per scope and every ancestor: (devices, online, offline, alerting).
    let mut counts: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut rows: Vec<(String, Row)> = Vec::new();
    for d in fleet.devices.values() {
        let online = Fleet::is_online(d, &app.rules, now);
        let alerts: Vec<String> = fleet
            .alerts_of(d, &app.rules, now)
            .into_iter()
            .map(|a| a.kind.label().to_string())
            .collect();
        let chain: Vec<String> = d
            .scope
            .as_ref()
            .map(|s| s.chain().iter().map(ToString::to_string).collect())
            .unwrap_or_else(|| vec!["未知".into()]);
        for s in &chain {
            let c = counts.entry(s.clone()).or_default();
            c[0] += 1;
            c[if online { 1 } else { 2 }] += 1;
            c[3] += usize::from(!alerts.is_empty());
        }
        let hall = chain.last().cloned().unwrap_or_default();
        let matches = (q.is_empty() || d.id.contains(&q) || hall.contains(&q))
            && match only.as_str() {
                "online" => online,
                "offline" => !online,
                "alerting" => !alerts.is_empty(),
                _ => true,
            };
        if matches {
            rows.push((hall, (d, online, alerts)));
        }
    }
    let total: usize = fleet.devices.len();
    let online = fleet.devices.values().filter(|d| Fleet::is_online(d, &app.rules, now)).count();
    let mut b = String::new();
    let _ = write!(
        b,
        "<p class=\"card\">设备 <b id=\"total\">{total}</b> 台 · 在线 <b class=\"on\" id=\"online\">{online}</b> · 离线 <b class=\"off\" id=\"offline\">{}</b> · 告警 <b id=\"alerting\">{}</b></p>",
        total - online,
        fleet.alerts(&app.rules, now).iter().map(|a| &a.device).collect::<std::collections::BTreeSet<_>>().len()
    );
    let sel = |v: &str| if only == v { " selected" } else { "" };
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/\">筛选 <input name=\"q\" value=\"{}\" placeholder=\"设备编号或区划\"> <select name=\"status\"><option value=\"\">全部</option><option value=\"online\"{}>在线</option><option value=\"offline\"{}>离线</option><option value=\"alerting\"{}>告警</option></select> <button>筛选</button></form>",
        esc(&q), sel("online"), sel("offline"), sel("alerting")
    );
    b.push_str("<h2>按区划 (by scope)</h2><table><tr><th>区划</th><th>设备</th><th>在线</th><th>离线</th><th>告警</th></tr>");
    for (scope, c) in &counts {
        let depth = ScopeCode::parse(scope).map(|s| s.chain().len()).unwrap_or(1);
        let _ = write!(
            b,
            "<tr><td style=\"padding-left:{}em\"><a href=\"/?q={}\">{}</a></td><td>{}</td><td class=\"on\">{}</td><td class=\"off\">{}</td><td>{}</td></tr>",
            depth,
            url_encode(scope),
            esc(scope),
            c[0],
            c[1],
            c[2],
            c[3]
        );
    }
    b.push_str("</table>");
    // Alerting devices first, then by hall and id; one page of rows, grouped by hall.
    rows.sort_by(|(ha, (da, _, aa)), (hb, (db, _, ab))| {
        (aa.is_empty(), ha, &da.id).cmp(&(ab.is_empty(), hb, &db.id))
    });
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let page_no =
        query.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    let link = |n: usize| format!("/?q={}&status={}&page={n}", url_encode(&q), url_encode(&only));
    let mut nav = format!(
        "<p class=\"pager\">匹配 <b id=\"matching\">{}</b> 台 · 第 <b id=\"page\">{page_no}</b> / {pages} 页（每页 {PAGE_SIZE} 台，告警优先）",
        rows.len()
    );
    if page_no > 1 {
        let _ = write!(nav, " <a id=\"prev\" href=\"{}\">上一页</a>", esc(&link(page_no - 1)));
    }
    if page_no < pages {
        let _ = write!(nav, " <a id=\"next\" href=\"{}\">下一页</a>", esc(&link(page_no + 1)));
    }
    nav.push_str("</p>");
    b.push_str(&nav);
    let shown = rows.iter().skip((page_no - 1) * PAGE_SIZE).take(PAGE_SIZE);
    let mut sections: Vec<(&String, Vec<&Row>)> = Vec::new();
    for (hall, row) in shown {
        match sections.last_mut() {
            Some((h, v)) if *h == hall => v.push(row),
            _ => sections.push((hall, vec![row])),
        }
    }
    for (hall, devices) in &sections {
        let _ = write!(b, "<h3>{}</h3><table><tr><th>设备</th><th>状态</th><th>应用版本</th><th>内容版本</th><th>最后消息</th><th>告警</th></tr>", esc(hall));
        for (d, online, alerts) in devices.iter().map(|r| (&r.0, &r.1, &r.2)) {
            let versions = d
                .health
                .as_ref()
                .map(|h| {
                    h.content
                        .iter()
                        .map(|v| format!("{} v{}", v.scope, v.version))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = write!(
                b,
                "<tr class=\"{}\" data-device=\"{}\"><td><a href=\"/device/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if alerts.is_empty() { "" } else { "warn" },
                esc(&d.id),
                url_encode(&d.id),
                esc(&d.id),
                status_cell(*online),
                esc(d.health.as_ref().map(|h| h.app_version.as_str()).unwrap_or("")),
                esc(&versions),
                d.last_seen.map(|t| t.format("%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
                esc(&alerts.join(" "))
            );
        }
        b.push_str("</table>");
    }
    if pages > 1 {
        b.push_str(&nav);
    }
    Ok(page("设备总览", Some(session), &b))
}

fn alerts_page(app: &App, session: &Session) -> anyhow::Result<String> {
    let now = Utc::now();
    let fleet = lock(&app.fleet)?;
    let mut b = String::from("<table id=\"alerts\"><tr><th>设备</th><th>区划</th><th>类型</th><th>原因</th><th>开始于</th></tr>");
    for a in fleet.alerts(&app.rules, now) {
        let _ = write!(
            b,
            "<tr data-alert=\"{}\"><td><a href=\"/device/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{} ({} 秒前)</td></tr>",
            a.kind.label(),
            url_encode(&a.device),
            esc(&a.device),
            esc(&a.scope.map(|s| s.to_string()).unwrap_or_default()),
            a.kind.label(),
            esc(&a.reason),
            a.since.format("%Y-%m-%d %H:%M:%S UTC"),
            (now - a.since).num_seconds()
        );
    }
    b.push_str("</table>");
    Ok(page("告警", Some(session), &b))
}

fn commands_page(app: &App, session: &Session) -> anyhow::Result<String> {
    let rows = db::audit_log(&*lock(&app.conn)?, 500)?;
    let mut b = String::from("<table><tr><th>时间</th><th>操作员</th><th>设备</th><th>指令</th><th>编号</th><th>结果</th></tr>");
    for (at, op, dev, id, action, ok, result) in rows {
        let res = match ok {
            Some(true) => format!("成功 {}", esc(&result.unwrap_or_default())),
            Some(false) => {
                format!("<span class=\"off\">失败 {}</span>", esc(&result.unwrap_or_default()))
            }
            None => "等待回执".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{res}</td></tr>",
            esc(&at),
            esc(&op),
            esc(&dev),
            esc(&action),
            esc(&id)
        );
    }
    b.push_str("</table>");
    Ok(page("指令记录", Some(session), &b))
}

/// The 五统一 audit of every device (or of those under `?scope=`), by scope then id.
fn standard_rows(
    app: &App,
    query: &BTreeMap<String, String>,
) -> anyhow::Result<(Vec<audit::Row>, Option<ScopeCode>)> {
    let now = Utc::now();
    let filter = query
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .and_then(|s| ScopeCode::parse(s).ok());
    // Lock order: fleet, then published (nothing takes them the other way round).
    let fleet = lock(&app.fleet)?;
    let mut published = match &app.published {
        Some(p) => Some(lock(p)?),
        None => None,
    };
    if let Some(p) = published.as_mut() {
        p.refresh();
    }
    let mut rows = Vec::new();
    for d in fleet.devices.values() {
        if let Some(f) = &filter {
            if !d.scope.as_ref().is_some_and(|s| f.contains(s)) {
                continue;
            }
        }
        let expected = match (published.as_mut(), &d.scope) {
            (Some(p), Some(hall)) => Some(p.expected(hall)),
            (Some(_), None) => Some(Err("设备尚未上报区划".to_string())),
            (None, _) => None,
        };
        rows.push(audit::audit(d, expected.as_ref(), now));
    }
    rows.sort_by(|a, b| (&a.scope, &a.device).cmp(&(&b.scope, &b.device)));
    Ok((rows, filter))
}

const PRINT_CSS: &str = "<style>td.pass{color:#18794e}td.fail{color:#b3241b}tr.group th{background:#eee}table.audit td,table.audit th{font-size:.9em}@media print{header,form,.noprint{display:none}body{background:#fff;color:#000}main{padding:0}td.pass,td.fail{color:#000}table.audit{width:100%}thead{display:table-header-group}tr{page-break-inside:avoid}@page{size:A4 landscape;margin:12mm}}</style>";

fn standard_page(
    app: &App,
    session: &Session,
    query: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let (rows, filter) = standard_rows(app, query)?;
    let scope = filter.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut b = String::from(PRINT_CSS);
    let mut fails = [0usize; 5];
    for r in &rows {
        for (i, c) in r.checks.iter().enumerate() {
            fails[i] += usize::from(!c.ok);
        }
    }
    let _ = write!(
        b,
        "<p class=\"card\">审计时间 {} · 设备 <b id=\"audited\">{}</b> 台{} · 不符合：{}</p>",
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        rows.len(),
        if scope.is_empty() { String::new() } else { format!(" · 区划 {}", esc(&scope)) },
        COLUMNS
            .iter()
            .zip(fails)
            .map(|(c, n)| format!("{c} {n} 台"))
            .collect::<Vec<_>>()
            .join("，")
    );
    if app.published.is_none() {
        b.push_str("<p class=\"off\">看板启动时未给出 --published（发布内容目录），无法比对统一标识、内容、功能和设置。</p>");
    }
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/audit\" class=\"noprint\">区划 <input name=\"scope\" value=\"{0}\" placeholder=\"如 430182\"> <button>筛选</button> <a href=\"/audit.csv?scope={1}\" id=\"csv\">导出 CSV</a> · 打印请用浏览器的打印功能（已适配 A4 横向）</form>",
        esc(&scope),
        url_encode(&scope)
    );
    b.push_str("<table class=\"audit\" id=\"audit\"><thead><tr><th>设备</th>");
    for c in COLUMNS {
        let _ = write!(b, "<th>{c}</th>");
    }
    b.push_str("</tr></thead><tbody>");
    let mut group: Option<Option<ScopeCode>> = None;
    for r in &rows {
        if group.as_ref() != Some(&r.scope) {
            let name =
                r.scope.as_ref().map(ToString::to_string).unwrap_or_else(|| "未知区划".into());
            let _ = write!(b, "<tr class=\"group\"><th colspan=\"6\">{}</th></tr>", esc(&name));
            group = Some(r.scope.clone());
        }
        let _ = write!(b, "<tr data-device=\"{0}\"><td>{0}</td>", esc(&r.device));
        for c in &r.checks {
            let (class, mark, word) =
                if c.ok { ("pass", "✓", "符合") } else { ("fail", "✗", "不符合") };
            let _ = write!(b, "<td class=\"{class}\">{mark} {word}：{}</td>", esc(&c.reason));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    Ok(page("五统一审计", Some(session), &b))
}

/// The audit as CSV: UTF-8 with a BOM (so Excel opens it as UTF-8), one row per device.
fn standard_csv(app: &App, query: &BTreeMap<String, String>) -> anyhow::Result<Vec<u8>> {
    let (rows, _) = standard_rows(app, query)?;
    let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    let mut header = vec!["设备".to_string(), "区划".to_string()];
    for c in COLUMNS {
        header.push(c.to_string());
        header.push(format!("{c}说明"));
    }
    w.write_record(&header)?;
    for r in &rows {
        let mut rec =
            vec![r.device.clone(), r.scope.as_ref().map(ToString::to_string).unwrap_or_default()];
        for c in &r.checks {
            rec.push(if c.ok { "✓" } else { "✗" }.to_string());
            rec.push(c.reason.clone());
        }
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing the CSV: {e}"))
}

/// An SVG polyline of `values` scaled into a small box, with the latest value as text.
pub fn sparkline(label: &str, values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    let (w, h) = (300.0, 48.0);
    let mut s = format!("<div class=\"card\"><div>{}: <b>{}</b></div><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">", esc(label), values.last().map(|v| fmt(*v)).unwrap_or_else(|| "—".into()), esc(label));
    if values.len() >= 2 {
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let span = if max > min { max - min } else { 1.0 };
        let step = w / (values.len() - 1) as f64;
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!("{:.1},{:.1}", i as f64 * step, h - 4.0 - (v - min) / span * (h - 8.0))
            })
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"#b3241b\" stroke-width=\"1.5\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    s.push_str("</svg></div>");
    s
}

fn device_page(app: &App, session: &Session, id: &str) -> anyhow::Result<Option<String>> {
    let now = Utc::now();
    let fleet = lock(&app.fleet)?;
    let Some(d) = fleet.devices.get(id) else { return Ok(None) };
    let online = Fleet::is_online(d, &app.rules, now);
    let mut b = String::new();
    let h = d.health.as_ref();
    let _ = write!(
        b,
        "<div class=\"card\"><p>状态：<span id=\"status\">{}</span> · 区划：{} · 应用版本：{} · 最后消息：{}</p><p>内容版本：{}</p><p>运行时长：{} 秒 · 最近同步：{} · 磁盘：{} / {}</p></div>",
        status_cell(online),
        esc(&d.scope.as_ref().map(ToString::to_string).unwrap_or_else(|| "未知".into())),
        esc(h.map(|h| h.app_version.as_str()).unwrap_or("—")),
        d.last_seen.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default(),
        esc(&h.map(|h| h.content.iter().map(|v| {
            let published = fleet.published.get(&v.scope).map(|p| format!(" (已发布 v{})", p.0)).unwrap_or_default();
            format!("{} v{}{}", v.scope, v.version, published)
        }).collect::<Vec<_>>().join("，")).unwrap_or_default()),
        h.map(|h| h.uptime_seconds).unwrap_or(0),
        h.and_then(|h| h.last_sync).map(|t| t.format("%m-%d %H:%M").to_string()).unwrap_or_else(|| "—".into()),
        bytes(h.map(|h| h.disk_available_bytes).unwrap_or(0)),
        bytes(h.map(|h| h.disk_total_bytes).unwrap_or(0)),
    );
    let alerts = fleet.alerts_of(d, &app.rules, now);
    if !alerts.is_empty() {
        b.push_str("<h2>告警</h2><ul id=\"device-alerts\">");
        for a in alerts {
            let _ = write!(
                b,
                "<li class=\"off\">{}：{}（自 {}）</li>",
                a.kind.label(),
                esc(&a.reason),
                a.since.format("%H:%M:%S")
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("<h2>健康历史</h2><div class=\"charts\">");
    let series = |f: &dyn Fn(&super::state::Sample) -> Option<f64>| {
        d.history.iter().filter_map(f).collect::<Vec<f64>>()
    };
    b.push_str(&sparkline("CPU %", &series(&|s| Some(s.cpu_percent)), |v| format!("{v:.0}%")));
    b.push_str(&sparkline("内存 memory", &series(&|s| Some(s.memory_used_bytes)), |v| {
        bytes(v as u64)
    }));
    b.push_str(&sparkline("磁盘剩余 disk free", &series(&|s| Some(s.disk_free_bytes)), |v| {
        bytes(v as u64)
    }));
    b.push_str(&sparkline("温度 °C", &series(&|s| s.temperature_c), |v| format!("{v:.0} °C")));
    b.push_str(&sparkline("触摸 touches", &series(&|s| Some(s.touches)), |v| format!("{v:.0}")));
    b.push_str("</div><h2>远程指令</h2>");
    if session.role == Role::Operator {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/device/{0}/command\" class=\"card\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\"><button name=\"action\" value=\"resync\" id=\"cmd-resync\">重新同步</button><button name=\"action\" value=\"restart\" id=\"cmd-restart\">重启应用</button><button name=\"action\" value=\"screenshot\" id=\"cmd-screenshot\">截屏</button></form><form method=\"post\" action=\"/device/{0}/command\" class=\"card\"><input type=\"hidden\" name=\"csrf\" value=\"{1}\"><input type=\"hidden\" name=\"action\" value=\"announce\"><input name=\"text\" placeholder=\"公告内容\"> <button id=\"cmd-announce\">发布公告</button></form>",
            url_encode(id),
            esc(&session.csrf)
        );
    } else {
        b.push_str("<p class=\"muted\">只读账号，不能发送指令。</p>");
    }
    b.push_str(
        "<table id=\"commands\"><tr><th>时间</th><th>操作员</th><th>指令</th><th>回执</th></tr>",
    );
    for c in fleet.commands.iter().filter(|c| c.device == id) {
        let ack = match &c.ack {
            Some(a) if a.ok => format!("<span class=\"on ack\">成功 ok：{}</span>", esc(&a.result)),
            Some(a) => format!("<span class=\"off ack\">失败 failed：{}</span>", esc(&a.result)),
            None => "等待回执…".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ack}</td></tr>",
            c.at.format("%H:%M:%S"),
            esc(&c.operator),
            esc(&c.action)
        );
    }
    b.push_str("</table><h2 id=\"screenshot\">最近截屏</h2>");
    match &d.screenshot {
        Some(s) => {
            let _ = write!(
                b,
                "<div class=\"card\"><p>截于 <span id=\"screenshot-at\">{}</span>（{}，SHA-256 {}…）</p><a href=\"/device/{id_enc}/screenshot.png\"><img id=\"screenshot-img\" src=\"/device/{id_enc}/screenshot.png?{}\" alt=\"设备 {} 的最近截屏\" style=\"max-width:480px;border:1px solid #ccc\"></a></div>",
                s.at.format("%Y-%m-%d %H:%M:%S UTC"),
                bytes(s.size),
                esc(s.sha256.get(..12).unwrap_or_default()),
                esc(s.sha256.get(..12).unwrap_or_default()),
                esc(id),
                id_enc = url_encode(id)
            );
        }
        None => b.push_str(
            "<p class=\"muted\" id=\"no-screenshot\">还没有截屏。操作员可点“截屏”请设备上传。</p>",
        ),
    }
    b.push_str("<h2>最近事件</h2><ul>");
    for (at, e) in &d.events {
        let _ = write!(b, "<li>{} {}</li>", at.format("%m-%d %H:%M:%S"), esc(e));
    }
    if let Some(h) = h {
        for e in &h.recent_errors {
            let _ = write!(b, "<li class=\"off\">错误：{}</li>", esc(e));
        }
    }
    b.push_str("</ul>");
    Ok(Some(page(&format!("设备 {id}"), Some(session), &b)))
}

/// Prometheus text exposition.
pub fn metrics(app: &App) -> String {
    let now = Utc::now();
    let Ok(fleet) = app.fleet.lock() else { return String::new() };
    let mut out = String::new();
    let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let dl = |d: &Device| {
        format!(
            "device=\"{}\",scope=\"{}\"",
            label(&d.id),
            label(&d.scope.as_ref().map(ToString::to_string).unwrap_or_default())
        )
    };
    let devs: Vec<&Device> = fleet.devices.values().collect();
    gauge(
        "kiosk_online",
        "1 when the kiosk reported within the offline limit.",
        devs.iter()
            .map(|d| {
                (
                    format!("{{{}}}", dl(d)),
                    f64::from(u8::from(Fleet::is_online(d, &app.rules, now))),
                )
            })
            .collect(),
    );
    let with_health =
        |f: &dyn Fn(&kiosk::sync::protocol::Health) -> Option<f64>| -> Vec<(String, f64)> {
            devs.iter()
                .filter_map(|d| Some((format!("{{{}}}", dl(d)), f(d.health.as_ref()?)?)))
                .collect()
        };
    gauge(
        "kiosk_cpu_percent",
        "CPU use since the previous health report.",
        with_health(&|h| Some(f64::from(h.cpu_percent))),
    );
    gauge(
        "kiosk_memory_bytes",
        "Memory in use.",
        with_health(&|h| Some(h.mem_total_kb.saturating_sub(h.mem_available_kb) as f64 * 1024.0)),
    );
    gauge(
        "kiosk_disk_free_bytes",
        "Free bytes on the data disk.",
        with_health(&|h| Some(h.disk_available_bytes as f64)),
    );
    gauge(
        "kiosk_temperature_celsius",
        "Hottest thermal zone.",
        with_health(&|h| h.temperature_c.map(f64::from)),
    );
    gauge(
        "kiosk_uptime_seconds",
        "Seconds since boot.",
        with_health(&|h| Some(h.uptime_seconds as f64)),
    );
    let mut versions = Vec::new();
    for d in &devs {
        for v in d.health.iter().flat_map(|h| &h.content) {
            versions.push((
                format!("{{device=\"{}\",scope=\"{}\"}}", label(&d.id), label(v.scope.as_str())),
                v.version as f64,
            ));
        }
    }
    gauge(
        "kiosk_content_version",
        "Activated content version per scope of the kiosk's chain.",
        versions,
    );
    gauge(
        "fleet_published_version",
        "The content version the city published per scope.",
        fleet
            .published
            .iter()
            .map(|(s, (v, _))| (format!("{{scope=\"{}\"}}", label(s.as_str())), *v as f64))
            .collect(),
    );
    let alerts = fleet.alerts(&app.rules, now);
    let online = devs.iter().filter(|d| Fleet::is_online(d, &app.rules, now)).count();
    gauge("fleet_devices", "Kiosks known to the fleet.", vec![(String::new(), devs.len() as f64)]);
    gauge("fleet_devices_online", "Kiosks online.", vec![(String::new(), online as f64)]);
    gauge(
        "fleet_devices_offline",
        "Kiosks offline.",
        vec![(String::new(), (devs.len() - online) as f64)],
    );
    let mut by_kind: BTreeMap<&str, usize> =
        ["offline", "stale-content", "black-screen", "disk-full", "printer", "outbox-waiting"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
    for a in &alerts {
        *by_kind.entry(a.kind.label()).or_default() += 1;
    }
    gauge(
        "fleet_alerts",
        "Open alerts by kind.",
        by_kind.into_iter().map(|(k, n)| (format!("{{kind=\"{k}\"}}"), n as f64)).collect(),
    );
    let c = &app.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (changes, persisted) = (load(&c.changes), load(&c.persisted));
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter(
        "fleet_messages_ingested_total",
        "MQTT messages applied to the fleet state.",
        load(&c.ingested),
    );
    counter("fleet_changes_persisted_total", "Changes committed to the fleet database.", persisted);
    let s = &app.webhook_stats;
    counter("fleet_webhook_sent_total", "Alert notices the webhook accepted.", load(&s.sent));
    counter("fleet_webhook_failed_total", "Alert notices given up after retries.", load(&s.failed));
    counter(
        "fleet_webhook_errors_total",
        "Failed webhook attempts, retries included (refused connection, TLS, non-2xx).",
        load(&s.errors),
    );
    counter(
        "fleet_webhook_dropped_total",
        "Alert notices dropped on a full queue.",
        load(&s.dropped),
    );
    let _ = writeln!(
        out,
        "# HELP fleet_ingest_backlog Messages received but not yet applied, and changes not yet committed.\n# TYPE fleet_ingest_backlog gauge\nfleet_ingest_backlog{{stage=\"mqtt\"}} {}\nfleet_ingest_backlog{{stage=\"database\"}} {}",
        load(&c.queued),
        changes.saturating_sub(persisted)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_decode_and_html_is_escaped() {
        let q = parse_query("user=%E7%8E%8B+a&password=p%26w%3D&x");
        assert_eq!(q["user"], "王 a");
        assert_eq!(q["password"], "p&w=");
        assert_eq!(esc("<a href=\"x\">"), "&lt;a href=&quot;x&quot;&gt;");
        assert_eq!(url_decode(&url_encode("k-1 王")), "k-1 王");
    }

    #[test]
    fn a_sparkline_draws_one_point_per_sample() {
        let svg = sparkline("CPU", &[1.0, 5.0, 3.0], |v| format!("{v}"));
        assert_eq!(svg.matches(',').count(), 3);
        assert!(svg.contains("<b>3</b>"));
    }
}
