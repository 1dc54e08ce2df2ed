//! A Slint platform without a display: windows render with the software renderer into
//! memory. Screenshots (`kiosk screenshot`) and the UI tests use it; it needs no X server.

use std::rc::Rc;

use anyhow::Context as _;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, PlatformError, WindowAdapter};
use slint::{PhysicalSize, Rgba8Pixel, SharedPixelBuffer};

struct Headless;

impl Platform for Headless {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, PlatformError> {
        Ok(MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer))
    }
}

/// Makes the headless platform this thread's Slint platform. Slint keeps one platform per
/// thread; calling this again on the same thread is harmless.
pub fn init() -> anyhow::Result<()> {
    // AlreadySet is the only error: this thread has its platform already.
    let _ = slint::platform::set_platform(Box::new(Headless));
    Ok(())
}

/// Sizes the window as a kiosk screen of `width`×`height` pixels and shows it.
pub fn set_size(window: &slint::Window, width: u32, height: u32) -> anyhow::Result<()> {
    window.set_size(PhysicalSize::new(width, height));
    window.show().context("showing the headless window")?;
    Ok(())
}

/// Renders the window as it is now. Timers and change handlers are the caller's: tests
/// advance Slint's mock clock, screenshots call `update_timers_and_animations`.
pub fn snapshot(window: &slint::Window) -> anyhow::Result<SharedPixelBuffer<Rgba8Pixel>> {
    window.request_redraw();
    window.take_snapshot().context("rendering the window")
}

/// Writes an RGB PNG (no alpha: the kiosk is opaque, and it keeps files small).
pub fn write_png(
    pixels: &SharedPixelBuffer<Rgba8Pixel>,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder =
        png::Encoder::new(std::io::BufWriter::new(file), pixels.width(), pixels.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer =
        encoder.write_header().with_context(|| format!("writing {}", path.display()))?;
    let rgb: Vec<u8> = pixels.as_slice().iter().flat_map(|p| [p.r, p.g, p.b]).collect();
    writer.write_image_data(&rgb).with_context(|| format!("writing {}", path.display()))?;
    writer.finish().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
