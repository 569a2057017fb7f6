//! PNG chart of a bench time series: throughput on top, latency below.
//!
//! Drawn with plotters' bitmap backend. Text needs a TrueType font; we load
//! one from the system at run time (`SLUICE_CHART_FONT` or common DejaVu /
//! Liberation paths) rather than linking fontconfig or shipping a font.

use std::path::Path;
use std::sync::OnceLock;

/// One row of the time series: one full period of the measured window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Seconds from the end of the warm-up to the end of this period.
    pub elapsed_s: f64,
    /// Messages per second in the period.
    pub messages_per_sec: f64,
    /// MiB per second in the period.
    pub mb_per_sec: f64,
    /// Median latency in the period.
    pub latency_ms_p50: f64,
    /// 99th percentile latency in the period.
    pub latency_ms_p99: f64,
    /// Largest latency in the period.
    pub latency_ms_max: f64,
}

use plotters::prelude::*;

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a system font once; the bytes live for the whole process
/// because plotters keeps a `'static` reference to them.
fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var("SLUICE_CHART_FONT").ok();
        let paths = env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES.iter().copied());
        for path in paths {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err("no TrueType font found; set SLUICE_CHART_FONT to a .ttf file".to_owned())
    })
    .clone()
}

/// Draws `samples` into a PNG at `path`: messages per second on the left
/// axis of the top panel, the same line read in bytes per second on its
/// right axis, and p50/p99 latency below.
pub fn draw(path: &Path, mode: &str, samples: &[Sample]) -> Result<(), String> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(350);
    let t_max = samples.iter().map(|s| s.elapsed_s).fold(1.0, f64::max);
    let rate_max = samples
        .iter()
        .map(|s| s.messages_per_sec)
        .fold(1.0, f64::max)
        * 1.1;
    let lat_max = samples.iter().map(|s| s.latency_ms_p99).fold(0.1, f64::max) * 1.1;
    // Values have one size in a bench run, so bytes/s is msgs/s times the
    // mean value size: a second scale for the same line.
    let (messages, mib): (f64, f64) = samples.iter().fold((0.0, 0.0), |(m, b), s| {
        (m + s.messages_per_sec, b + s.mb_per_sec)
    });
    let bytes_per_message = if messages > 0.0 {
        mib * 1024.0 * 1024.0 / messages
    } else {
        0.0
    };

    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("sluice bench {mode}: throughput"),
            ("sans-serif", 22),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..rate_max)
        .map_err(|e| e.to_string())?
        .set_secondary_coord(0.0..t_max, 0.0..(rate_max * bytes_per_message).max(1.0));
    chart
        .configure_mesh()
        .x_desc("seconds after warm-up")
        .y_desc("msgs/s")
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .configure_secondary_axes()
        .y_desc("bytes/s")
        .y_label_formatter(&|v| bytes_label(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.elapsed_s, s.messages_per_sec)),
            &BLUE,
        ))
        .map_err(|e| e.to_string())?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption("latency (ms)", ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max, 0.0..lat_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds after warm-up")
        .y_desc("ms")
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.elapsed_s, s.latency_ms_p50)),
            &GREEN,
        ))
        .map_err(|e| e.to_string())?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.elapsed_s, s.latency_ms_p99)),
            &RED,
        ))
        .map_err(|e| e.to_string())?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// SI prefixes for tick labels, largest first.
const SI_PREFIXES: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
/// Binary prefixes for byte labels, largest first.
const BYTE_PREFIXES: [(f64, &str); 4] = [
    (1024.0 * 1024.0 * 1024.0 * 1024.0, "Ti"),
    (1024.0 * 1024.0 * 1024.0, "Gi"),
    (1024.0 * 1024.0, "Mi"),
    (1024.0, "Ki"),
];

/// An axis tick: `400k`, `1.2M`, `950`, `0.25`; never `400000.0`.
pub fn tick_label(v: f64) -> String {
    let (number, prefix) = scaled(v, &SI_PREFIXES, 2);
    format!("{number}{prefix}")
}

/// A bytes-per-second tick: `512 B`, `1.5 KiB`, `100 MiB`.
pub fn bytes_label(v: f64) -> String {
    let (number, prefix) = scaled(v, &BYTE_PREFIXES, 0);
    format!("{number} {prefix}B")
}

/// `v` as a number and the largest prefix it reaches, with one decimal at
/// most (`plain_decimals` when no prefix applies) and no trailing zeros.
fn scaled(v: f64, prefixes: &[(f64, &'static str)], plain_decimals: i32) -> (String, &'static str) {
    if !v.is_finite() {
        return (String::new(), "");
    }
    let a = v.abs();
    for (i, &(scale, prefix)) in prefixes.iter().enumerate() {
        // What the next level down would show; if that rounds up to this
        // level, show this level instead (999_990 is 1M, not 1000k).
        let (below, decimals) = prefixes
            .get(i + 1)
            .map_or((1.0, plain_decimals), |&(s, _)| (s, 1));
        if a >= scale || round_to(a / below, decimals) * below >= scale {
            return (trimmed(v / scale, 1), prefix);
        }
    }
    (trimmed(v, plain_decimals), "")
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// `v` with at most `decimals` decimals, trailing zeros and a trailing
/// point dropped, and no `-0`.
fn trimmed(v: f64, decimals: i32) -> String {
    let decimals = decimals.max(0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    if s == "-0" { "0".to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short_integers_with_si_prefixes() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (950.0, "950"),
            (2.5, "2.5"),
            (0.25, "0.25"),
            (1000.0, "1k"),
            (400_000.0, "400k"),
            (1_200_000.0, "1.2M"),
            (12_345_678.0, "12.3M"),
            (999_990.0, "1M"),
            (999.999, "1k"),
            (3e9, "3G"),
            (-1500.0, "-1.5k"),
        ];
        for (v, want) in cases {
            assert_eq!(tick_label(v), want, "{v}");
        }
        assert!(!tick_label(400_000.0).contains('.'));
    }

    #[test]
    fn byte_labels_use_binary_units() {
        assert_eq!(bytes_label(0.0), "0 B");
        assert_eq!(bytes_label(512.0), "512 B");
        assert_eq!(bytes_label(1536.0), "1.5 KiB");
        assert_eq!(bytes_label(100.0 * 1024.0 * 1024.0), "100 MiB");
        assert_eq!(bytes_label(2.0 * 1024.0 * 1024.0 * 1024.0), "2 GiB");
        assert_eq!(bytes_label(1023.9), "1 KiB", "no 1024 B");
    }
}
