//! QR codes for “扫码带走”: the modules of a code, drawn by the UI as pixels
//! (`ui::qr`) and by the printouts as filled squares (`print`).

use qrcode::{Color, EcLevel, QrCode};

/// Modules of white border around the code, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;

/// The dark/light modules of `text`'s QR code, row by row, with its width; `None` when the
/// text is too long for any QR code.
pub fn modules(text: &str) -> Option<(usize, Vec<bool>)> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let dark = code.to_colors().into_iter().map(|c| c == Color::Dark).collect();
    Some((width, dark))
}
