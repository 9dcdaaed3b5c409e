//! The local renderer: a stand-in for an image or video model, so the demo
//! and the tests run without a provider. A picture is a soft two-colour
//! gradient under glowing discs whose colours, places and sizes come from a
//! hash of the prompt and the seed: the same request always yields the same
//! bytes (on the same build), and a different prompt or seed a different
//! picture. A video moves the discs along their orbits.
//!
//! Pixels are computed with plain arithmetic (no `sin` per pixel), in RGB,
//! and encoded as PNG, or as animated PNG (APNG) for videos.

use sha2::{Digest, Sha256};

/// Frames per second of a rendered video.
pub const FPS: u16 = 8;

/// Largest side of any picture this renderer makes.
pub const MAX_SIDE: u32 = 1024;

/// The media type of a rendered video.
pub const APNG: &str = "image/apng";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot encode the PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("cannot decode the PNG: {0}")]
    Decode(#[from] png::DecodingError),
    #[error("{0}")]
    Unsupported(String),
}

/// What a picture is made of, derived from (prompt, seed).
#[derive(Debug, Clone)]
pub struct Scene {
    background: [[f32; 3]; 2],
    /// The gradient's direction, a unit vector.
    direction: (f32, f32),
    discs: Vec<Disc>,
}

#[derive(Debug, Clone)]
struct Disc {
    centre: (f32, f32),
    radius: f32,
    colour: [f32; 3],
    /// Radius of the circle the centre travels in a video.
    orbit: f32,
    /// Where on that circle the disc starts, in turns.
    phase: f32,
    /// Turns per video (whole, so a video loops seamlessly).
    turns: f32,
}

/// Bytes drawn from SHA-256(counter, seed, prompt): as many as asked for.
struct Entropy<'p> {
    prompt: &'p str,
    seed: u64,
    block: [u8; 32],
    used: usize,
    counter: u32,
}

impl<'p> Entropy<'p> {
    fn new(prompt: &'p str, seed: u64) -> Self {
        let mut e = Entropy {
            prompt,
            seed,
            block: [0; 32],
            used: 32,
            counter: 0,
        };
        e.refill();
        e
    }

    fn refill(&mut self) {
        let mut h = Sha256::new();
        h.update(self.counter.to_le_bytes());
        h.update(self.seed.to_le_bytes());
        h.update(self.prompt.as_bytes());
        self.block = h.finalize().into();
        self.used = 0;
        self.counter += 1;
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f32 {
        if self.used + 2 > self.block.len() {
            self.refill();
        }
        let v = u16::from_le_bytes([self.block[self.used], self.block[self.used + 1]]);
        self.used += 2;
        f32::from(v) / 65536.0
    }

    fn between(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

/// Hue in turns, saturation and value in [0, 1], to linear-ish RGB.
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.fract() * 6.0).clamp(0.0, 5.999);
    let sector = h6 as u8;
    let f = h6 - f32::from(sector);
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match sector {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

impl Scene {
    pub fn new(prompt: &str, seed: u64) -> Scene {
        let mut e = Entropy::new(prompt, seed);
        let base_hue = e.unit();
        let background = [
            hsv(base_hue, e.between(0.5, 0.9), e.between(0.15, 0.35)),
            hsv(
                base_hue + e.between(0.1, 0.4),
                e.between(0.4, 0.8),
                e.between(0.45, 0.75),
            ),
        ];
        let angle = e.between(0.0, std::f32::consts::TAU);
        let count = 4 + (e.unit() * 5.0) as usize;
        let discs = (0..count)
            .map(|_| Disc {
                centre: (e.between(0.1, 0.9), e.between(0.1, 0.9)),
                radius: e.between(0.06, 0.28),
                colour: hsv(
                    base_hue + e.between(0.3, 0.7),
                    e.between(0.5, 1.0),
                    e.between(0.7, 1.0),
                ),
                orbit: e.between(0.02, 0.15),
                phase: e.unit(),
                turns: if e.unit() < 0.5 { 1.0 } else { -1.0 },
            })
            .collect();
        Scene {
            background,
            direction: (angle.cos(), angle.sin()),
            discs,
        }
    }

    /// One frame, `side` pixels square, RGB8, at `t` in [0, 1) of a loop.
    pub fn frame(&self, side: u32, t: f32) -> Vec<u8> {
        let n = side as usize;
        let scale = 1.0 / side as f32;
        // Disc centres at this instant: the only trigonometry, per disc.
        let discs: Vec<(f32, f32, f32, [f32; 3])> = self
            .discs
            .iter()
            .map(|d| {
                let a = std::f32::consts::TAU * (d.phase + d.turns * t);
                let (x, y) = (
                    d.centre.0 + d.orbit * a.cos(),
                    d.centre.1 + d.orbit * a.sin(),
                );
                (x, y, 1.0 / (d.radius * d.radius), d.colour)
            })
            .collect();
        let (dx, dy) = self.direction;
        let [c0, c1] = self.background;
        let mut out = Vec::with_capacity(n * n * 3);
        for py in 0..n {
            let v = (py as f32 + 0.5) * scale;
            for px in 0..n {
                let u = (px as f32 + 0.5) * scale;
                let g = ((u - 0.5) * dx + (v - 0.5) * dy + 0.5).clamp(0.0, 1.0);
                let mut rgb = [
                    c0[0] + (c1[0] - c0[0]) * g,
                    c0[1] + (c1[1] - c0[1]) * g,
                    c0[2] + (c1[2] - c0[2]) * g,
                ];
                for &(x, y, inv_r2, colour) in &discs {
                    let d2 = ((u - x) * (u - x) + (v - y) * (v - y)) * inv_r2;
                    if d2 < 1.0 {
                        // A soft edge: full at the centre, zero at the rim.
                        let a = (1.0 - d2) * (1.0 - d2) * 0.85;
                        for (c, k) in rgb.iter_mut().zip(colour) {
                            *c += (k - *c) * a;
                        }
                    }
                }
                out.extend(rgb.map(|c| (c.clamp(0.0, 1.0) * 255.0 + 0.5) as u8));
            }
        }
        out
    }
}

/// A still picture as PNG.
pub fn image(prompt: &str, seed: u64, side: u32) -> Result<Vec<u8>, RenderError> {
    check_side(side)?;
    encode_png(side, &Scene::new(prompt, seed).frame(side, 0.0))
}

/// A looping video as APNG: `seconds` at [`FPS`]. `progress` hears the
/// percentage done after each frame.
pub fn video(
    prompt: &str,
    seed: u64,
    side: u32,
    seconds: u32,
    progress: &dyn Fn(u8),
) -> Result<Vec<u8>, RenderError> {
    check_side(side)?;
    let scene = Scene::new(prompt, seed);
    let frames = seconds * u32::from(FPS);
    encode_apng(side, frames, |i| {
        let frame = scene.frame(side, i as f32 / frames as f32);
        progress((100 * i / frames) as u8);
        frame
    })
}

/// A looping video, `side` pixels square, made from a square still PNG
/// (say, a provider's picture): a slow zoom into its centre and back out.
pub fn animate_still(png_bytes: &[u8], side: u32, seconds: u32) -> Result<Vec<u8>, RenderError> {
    check_side(side)?;
    let (src_side, rgb) = decode_square_rgb(png_bytes)?;
    let frames = seconds * u32::from(FPS);
    encode_apng(side, frames, |i| {
        // Zoom 1.0 -> 1.25 -> 1.0 over the loop, without trigonometry.
        let t = i as f32 / frames as f32;
        let zoom = 1.0 + 0.5 * t.min(1.0 - t);
        crop_zoom(&rgb, src_side, side, zoom)
    })
}

fn check_side(side: u32) -> Result<(), RenderError> {
    if side == 0 || side > MAX_SIDE {
        return Err(RenderError::Unsupported(format!(
            "a side of {side} pixels is outside 1..={MAX_SIDE}"
        )));
    }
    Ok(())
}

fn encoder<'w>(out: &'w mut Vec<u8>, side: u32) -> png::Encoder<'w, &'w mut Vec<u8>> {
    let mut enc = png::Encoder::new(out, side, side);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc
}

fn encode_png(side: u32, rgb: &[u8]) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    let mut writer = encoder(&mut out, side).write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

fn encode_apng(
    side: u32,
    frames: u32,
    frame: impl Fn(u32) -> Vec<u8>,
) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    let mut enc = encoder(&mut out, side);
    enc.set_animated(frames, 0)?;
    enc.set_frame_delay(1, FPS)?;
    let mut writer = enc.write_header()?;
    for i in 0..frames {
        writer.write_image_data(&frame(i))?;
    }
    writer.finish()?;
    Ok(out)
}

/// Decodes a square PNG of at most [`MAX_SIDE`] pixels to RGB8.
fn decode_square_rgb(png_bytes: &[u8]) -> Result<(u32, Vec<u8>), RenderError> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let (w, h) = reader.info().size();
    if w != h || w == 0 || w > MAX_SIDE {
        return Err(RenderError::Unsupported(format!(
            "a {w}x{h} picture (square, at most {MAX_SIDE} pixels, expected)"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| RenderError::Unsupported("picture too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        png::ColorType::Indexed => {
            return Err(RenderError::Unsupported(
                "an indexed PNG left unexpanded".into(),
            ));
        }
    };
    Ok((w, rgb))
}

/// The centre 1/zoom of a square RGB picture `src_side` pixels wide,
/// scaled to `side` pixels (nearest neighbour).
fn crop_zoom(rgb: &[u8], src_side: u32, side: u32, zoom: f32) -> Vec<u8> {
    let (src, n) = (src_side as usize, side as usize);
    let span = src_side as f32 / zoom;
    let origin = (src_side as f32 - span) / 2.0;
    let step = span / side as f32;
    let mut out = Vec::with_capacity(n * n * 3);
    for y in 0..n {
        let sy = ((origin + y as f32 * step) as usize).min(src - 1);
        for x in 0..n {
            let sx = ((origin + x as f32 * step) as usize).min(src - 1);
            let at = (sy * src + sx) * 3;
            out.extend_from_slice(&rgb[at..at + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decode(bytes: &[u8]) -> (png::Reader<std::io::Cursor<&[u8]>>, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        (reader, buf)
    }

    #[test]
    fn same_prompt_and_seed_same_bytes_else_different() {
        let a = image("a lighthouse at dusk", 7, 64).unwrap();
        assert_eq!(a, image("a lighthouse at dusk", 7, 64).unwrap());
        assert_ne!(a, image("a lighthouse at dusk", 8, 64).unwrap());
        assert_ne!(a, image("a lighthouse at dawn", 7, 64).unwrap());
    }

    #[test]
    fn images_are_real_pngs_of_the_asked_size() {
        let bytes = image("x", 0, 256).unwrap();
        let (reader, pixels) = decode(&bytes);
        assert_eq!(reader.info().size(), (256, 256));
        assert_eq!(reader.info().color_type, png::ColorType::Rgb);
        // Not a flat fill: a picture has many colours.
        let distinct: std::collections::HashSet<&[u8]> = pixels.chunks_exact(3).collect();
        assert!(distinct.len() > 100, "{} colours", distinct.len());
    }

    #[test]
    fn videos_are_apngs_with_a_frame_per_tick() {
        let seen = std::sync::Mutex::new(Vec::new());
        let bytes = video("waves", 3, 32, 2, &|p| seen.lock().unwrap().push(p)).unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 2 * usize::from(FPS));
        assert!(seen.is_sorted() && *seen.last().unwrap() < 100, "{seen:?}");
        let (mut reader, first) = decode(&bytes);
        let actl = *reader.info().animation_control().unwrap();
        assert_eq!(actl.num_frames, 2 * u32::from(FPS));
        assert_eq!(actl.num_plays, 0, "loops forever");
        let mut frames = vec![first];
        for _ in 1..actl.num_frames {
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            reader.next_frame(&mut buf).unwrap();
            frames.push(buf);
        }
        assert_ne!(frames[0], frames[4], "the picture moves");
    }

    #[test]
    fn a_still_is_animated_at_the_asked_size() {
        let still = image("a cat", 1, 48).unwrap();
        let (_, original) = decode(&still);
        let apng = animate_still(&still, 48, 1).unwrap();
        let (reader, first) = decode(&apng);
        let frames = reader.info().animation_control().unwrap().num_frames;
        assert_eq!(frames, u32::from(FPS));
        assert_eq!(first, original, "the loop starts on the still itself");

        let small = animate_still(&still, 24, 1).unwrap();
        let (reader, first) = decode(&small);
        assert_eq!(reader.info().size(), (24, 24));
        // Every other pixel of every other row of the still.
        let every_other: Vec<u8> = original
            .chunks_exact(48 * 3)
            .step_by(2)
            .flat_map(|row| {
                row.chunks_exact(3)
                    .step_by(2)
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>()
            })
            .collect();
        assert_eq!(first, every_other);
    }

    #[test]
    fn sizes_out_of_range_are_refused_not_rendered() {
        assert!(matches!(image("x", 0, 0), Err(RenderError::Unsupported(_))));
        assert!(matches!(
            image("x", 0, MAX_SIDE + 1),
            Err(RenderError::Unsupported(_))
        ));
        assert!(matches!(
            animate_still(b"not a png", 8, 1),
            Err(RenderError::Decode(_))
        ));
    }
}
