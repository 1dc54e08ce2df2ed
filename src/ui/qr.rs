//! QR codes for “扫码带走” and 扫码服务, drawn as crisp pixel images with a quiet zone so a
//! phone (and `zbarimg` on a screenshot) reads them from the screen.

use crate::qr::{modules, QUIET_ZONE};

/// Grey pixels (0 black, 255 white) of the code with its quiet zone, `scale` pixels per
/// module; returns the side length too.
pub fn pixels(text: &str, scale: usize) -> Option<(usize, Vec<u8>)> {
    let (width, dark) = modules(text)?;
    let side = (width + 2 * QUIET_ZONE) * scale;
    let mut out = vec![255u8; side * side];
    for (i, is_dark) in dark.iter().enumerate() {
        if !is_dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
        for y in my * scale..(my + 1) * scale {
            let row = y * side;
            out[row + mx * scale..row + (mx + 1) * scale].fill(0);
        }
    }
    Some((side, out))
}

/// The code as a Slint image; an empty image when the text cannot be encoded.
pub fn image(text: &str) -> slint::Image {
    let Some((side, grey)) = pixels(text, 6) else { return slint::Image::default() };
    let Ok(side32) = u32::try_from(side) else { return slint::Image::default() };
    let mut buffer = slint::SharedPixelBuffer::<slint::Rgb8Pixel>::new(side32, side32);
    for (px, g) in buffer.make_mut_slice().iter_mut().zip(grey) {
        *px = slint::Rgb8Pixel { r: g, g, b: g };
    }
    slint::Image::from_rgb8(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_a_square_code_with_a_white_border() {
        let (side, px) = pixels("https://www.ningxiang.gov.cn/zwgk/1", 2).expect("encodes");
        assert_eq!(px.len(), side * side);
        assert!(px[..side * QUIET_ZONE * 2].iter().all(|&p| p == 255), "quiet zone on top");
        assert!(px.contains(&0), "has dark modules");
    }
}
