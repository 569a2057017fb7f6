//! PNG chart of a bench time series: throughput on top, latency below.
//!
//! Drawn with plotters' bitmap backend. Text needs a TrueType font; we load
//! one from the system at run time (`SLUICE_CHART_FONT` or common DejaVu /
//! Liberation paths) rather than linking fontconfig or shipping a font.

use std::path::Path;
use std::sync::OnceLock;

/// One row of the time series (one per second).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Seconds since start.
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

/// Draws `samples` into a PNG at `path`.
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

    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("sluice bench {mode}: throughput"),
            ("sans-serif", 22),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..rate_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("msgs/s")
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
        .build_cartesian_2d(0.0..t_max, 0.0..lat_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
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
