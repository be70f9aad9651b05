//! [`History::plot`]: one panel per metric (loss, accuracy, ...), each with the training
//! curve and, where `fit` had validation data, the validation curve, as a PNG or SVG.
//!
//! Drawn with `plotters`. Its text needs a TrueType font, read once at run time from
//! `$NN_PLOT_FONT` or a system font (DejaVu Sans, Liberation Sans, Arial; Debian/Ubuntu:
//! `apt-get install fonts-dejavu-core`), so the library ships no font and links no fontconfig.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::write_file;
use crate::error::{Error, Result};
use crate::training::History;

/// Pixels of one panel.
const PANEL: (u32, u32) = (560, 420);
/// matplotlib's first two colours, which Keras tutorials' plots use.
const TRAINING: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);

/// Fonts tried, in order, when `$NN_PLOT_FONT` is not set.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

impl History {
    /// Draws loss and accuracy (every metric recorded) per epoch, training and validation, to
    /// `path`: a PNG or an SVG, by the file's extension.
    ///
    /// Fails with [`Error::Output`] for another extension, an empty history, no usable font
    /// (`$NN_PLOT_FONT`, else DejaVu Sans, Liberation Sans or Arial from the usual system
    /// folders; Debian/Ubuntu: `apt-get install fonts-dejavu-core`), or a file that cannot be
    /// written.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let fail = |message: String| Error::Output { path: path.to_path_buf(), message };
        let metrics = self.plotted_metrics();
        if self.epochs() == 0 || metrics.is_empty() {
            return Err(fail("the history has no epochs to plot".into()));
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if extension != "png" && extension != "svg" {
            return Err(fail(format!("cannot draw a '.{extension}' file: use .png or .svg")));
        }
        register_font().map_err(&fail)?;
        let size = (PANEL.0 * metrics.len() as u32, PANEL.1);
        if extension == "svg" {
            let mut svg = String::new();
            draw(self, &metrics, SVGBackend::with_string(&mut svg, size).into_drawing_area())
                .map_err(&fail)?;
            write_file(path, svg.as_bytes())
        } else {
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            draw(self, &metrics, BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area())
                .map_err(&fail)?;
            crate::visualize::save_png(path, size.0, size.1, png::ColorType::Rgb, &rgb)
        }
    }

    /// The metrics with a training curve, loss first: `["loss", "accuracy"]`.
    fn plotted_metrics(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.history.keys().filter(|k| !k.starts_with("val_")).cloned().collect();
        names.sort_by_key(|k| (k != "loss", k.clone()));
        names
    }
}

/// Makes "sans-serif" text drawable: loads the first font found, once per process.
pub(crate) fn register_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = match std::env::var_os("NN_PLOT_FONT") {
                Some(p) => vec![PathBuf::from(p)],
                None => FONT_PATHS.iter().map(PathBuf::from).collect(),
            };
            let Some((found, bytes)) = candidates.iter().find_map(|p| Some((p, std::fs::read(p).ok()?)))
            else {
                return Err(format!(
                    "no font for the plot's text: tried {}; install one (Debian/Ubuntu: apt-get install \
                     fonts-dejavu-core) or set NN_PLOT_FONT to a .ttf file",
                    candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                ));
            };
            // plotters keeps `'static` font bytes; one font per process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a TrueType/OpenType font", found.display()))
        })
        .clone()
}

/// A line to draw: its legend label, colour and (epoch, value) points.
type Curve = (&'static str, RGBColor, Vec<(i32, f64)>);

fn draw<DB: DrawingBackend>(
    history: &History,
    metrics: &[String],
    root: DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let epochs = history.epochs() as i32;
    for (area, metric) in root.split_evenly((1, metrics.len())).iter().zip(metrics) {
        let curves: Vec<Curve> =
            [(metric.clone(), "training", TRAINING), (format!("val_{metric}"), "validation", VALIDATION)]
                .into_iter()
                .filter_map(|(key, label, colour)| {
                    let values = history.get(&key)?;
                    let points = values
                        .iter()
                        .enumerate()
                        .filter(|(_, y)| y.is_finite())
                        .map(|(i, &y)| (i as i32 + 1, f64::from(y)))
                        .collect();
                    Some((label, colour, points))
                })
                .collect();
        let ys = curves.iter().flat_map(|(_, _, points)| points.iter().map(|p| p.1));
        let (low, high) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let (low, high) = if low <= high { (low, high) } else { (0.0, 1.0) };
        let pad = ((high - low) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(metric, ("sans-serif", 24))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0..epochs + 1, (low - pad)..(high + pad))
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(metric.as_str())
            .x_labels((epochs as usize + 2).min(11))
            .draw()
            .map_err(text)?;
        for (label, colour, points) in curves {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(text)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(text)?;
        }
        let corner =
            if metric == "loss" { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight };
        chart
            .configure_series_labels()
            .position(corner)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(text)?;
    }
    root.present().map_err(text)
}
