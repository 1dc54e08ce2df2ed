//! Screenshots: `kiosk screenshot` renders one page of the UI with the installed content
//! into a PNG without a display (README gallery, visual review), and [`capture_png`] takes
//! the running window as it is for a remote `screenshot` command.

use std::path::Path;

use anyhow::Context as _;
use slint::ComponentHandle as _;
use slint::{Rgba8Pixel, SharedPixelBuffer};

use super::session::{FormKind, ListState, Page};
use super::{headless, init, Content, Delivery, Ui};
use crate::config::Config;
use crate::content::{Kind, Validity};
use crate::store::ListQuery;

/// The pages `--page` accepts.
pub const PAGES: &[&str] = &[
    "home",
    "policies",
    "guides",
    "faqs",
    "reader",
    "reader-repealed",
    "guide",
    "catalog",
    "catalog-item",
    "search",
    "keyboard",
    "qr",
    "request",
    "request-errors",
    "suggestion",
    "countdown",
    "attract",
    "pin",
    "admin",
];

/// Renders `page` with `content` and writes it to `out`.
pub fn render(
    config: &Config,
    content: Content,
    page: &str,
    portrait: bool,
    care: bool,
    out: &Path,
) -> anyhow::Result<()> {
    headless::init()?;
    let ui = init(config, content, Delivery::Queue)?;
    let (w, h) = if portrait { (1080, 1920) } else { (1920, 1080) };
    headless::set_size(ui.window.window(), w, h)?;
    ui.set_care(care);
    open(&ui, page)?;
    ui.settle();
    // Runs the change handlers (the layout follows the window's size) before drawing.
    slint::platform::update_timers_and_animations();
    let pixels = headless::snapshot(ui.window.window())?;
    headless::write_png(&pixels, out)
}

/// The first item of a list query, preferring one with a “扫码带走” URL so the picture
/// shows the QR code.
fn first(ui: &Ui, q: ListQuery) -> Option<String> {
    let store = ui.app.store.as_ref()?;
    let items = store.list(&q.page(0, 100)).ok()?.items;
    let with_url = items
        .iter()
        .find(|s| store.get(&s.id).ok().flatten().is_some_and(|d| d.item.url.is_some()));
    with_url.or(items.first()).map(|s| s.id.clone())
}

fn open(ui: &Ui, page: &str) -> anyhow::Result<()> {
    match page {
        "home" => ui.open(Page::Home),
        "policies" => ui.open(Page::List(ListState::new(Kind::Policy))),
        "guides" => ui.open(Page::List(ListState::new(Kind::Guide))),
        "faqs" => ui.open(Page::List(ListState::new(Kind::Faq))),
        "reader" => {
            let id = first(ui, ListQuery::new(Kind::Policy).validity(Validity::Valid))
                .context("no policy in force in the content")?;
            ui.open(Page::Reader(id));
        }
        "reader-repealed" => {
            let id = first(ui, ListQuery::new(Kind::Policy).validity(Validity::Repealed))
                .or_else(|| first(ui, ListQuery::new(Kind::Policy).validity(Validity::Expired)))
                .context("no repealed or expired policy in the content")?;
            ui.open(Page::Reader(id));
        }
        "guide" => {
            let id = first(ui, ListQuery::new(Kind::Guide)).context("no guide in the content")?;
            ui.open(Page::Reader(id));
        }
        "catalog" => ui.open(Page::Catalog(Vec::new())),
        "catalog-item" => {
            let id = first(ui, ListQuery::new(Kind::Catalog))
                .context("no catalogue item in the content")?;
            ui.open(Page::Reader(id));
        }
        "search" => {
            ui.open(Page::Home);
            super::search_adapter::open(&ui.app);
            ui.search("社保");
            super::keyboard_adapter::close(&ui.app);
        }
        "keyboard" => {
            ui.open(Page::Home);
            super::search_adapter::open(&ui.app);
            for k in ["s", "h", "e", "b", "a", "o"] {
                super::keyboard_adapter::press(&ui.app, k);
            }
        }
        "qr" => ui.open(Page::Qr),
        "request" => {
            ui.open(Page::Form(FormKind::Request));
            ui.focus_first_field();
        }
        "request-errors" => {
            ui.open(Page::Form(FormKind::Request));
            super::form_adapter::submit(&ui.app);
        }
        "suggestion" => ui.open(Page::Form(FormKind::Suggestion)),
        "countdown" => {
            ui.open(Page::List(ListState::new(Kind::Policy)));
            ui.show_idle(false);
        }
        "attract" => ui.show_idle(true),
        "pin" => super::admin_adapter::open(&ui.app),
        "admin" => ui.show_admin_unlocked(),
        other => anyhow::bail!("unknown page “{other}”; pages: {}", PAGES.join(", ")),
    }
    Ok(())
}

/// Draws the window as it is on screen now and encodes it as a PNG of the window's size:
/// the answer to a remote `screenshot` command. The kiosk's backends (winit and linuxkms,
/// both with the software renderer) and the headless one all render into a buffer for
/// `take_snapshot`.
pub fn capture_png(window: &slint::Window) -> anyhow::Result<Vec<u8>> {
    window.request_redraw();
    let pixels = window.take_snapshot().context("drawing the window for a screenshot")?;
    encode_png(&pixels)
}

/// Encodes pixels as an RGB PNG in memory (no alpha: the kiosk is opaque). Fast
/// compression: a full-HD screenshot is taken on the UI thread, which must not stall.
pub fn encode_png(pixels: &SharedPixelBuffer<Rgba8Pixel>) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, pixels.width(), pixels.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().context("encoding the screenshot")?;
    let rgb: Vec<u8> = pixels.as_slice().iter().flat_map(|p| [p.r, p.g, p.b]).collect();
    writer.write_image_data(&rgb).context("encoding the screenshot")?;
    writer.finish().context("encoding the screenshot")?;
    Ok(out)
}
