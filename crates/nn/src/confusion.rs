//! A trained classifier's confusion matrix: how many samples of each true class were predicted
//! as each class, as a text table or a PNG heat map.

use std::path::Path;

use plotters::prelude::*;

use crate::array::Array;
use crate::error::{Error, Result};

/// Counts of (true class, predicted class) pairs: row = truth, column = prediction.
///
/// ```
/// use nn::confusion::ConfusionMatrix;
/// use nn::Array;
/// let labels = Array::new(vec![0.0, 1.0, 1.0], [3])?;
/// let scores = Array::new(vec![0.9, 0.1, 0.8, 0.2, 0.3, 0.7], [3, 2])?;
/// let m = ConfusionMatrix::from_predictions(&labels, &scores)?;
/// assert_eq!((m.count(0, 0), m.count(1, 0), m.count(1, 1)), (1, 1, 1));
/// assert!((m.accuracy() - 2.0 / 3.0).abs() < 1e-6);
/// # Ok::<(), nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    counts: Vec<usize>,
}

/// Each row's class: its index (`[n]` labels) or its largest entry (`[n, classes]` one-hot
/// labels or scores; the first on ties).
fn classes_of(a: &Array, classes: usize, what: &str) -> Result<Vec<usize>> {
    match a.dims() {
        [_] => a
            .data()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes {
                    Ok(v as usize)
                } else {
                    Err(Error::Data(format!("{what}[{i}] = {v} is not a class index in 0..{classes}")))
                }
            })
            .collect(),
        [_, k] if *k == classes => Ok(a
            .data()
            .chunks_exact(classes)
            .map(|row| row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best }))
            .collect()),
        dims => Err(Error::Data(format!(
            "{what} must be [n] class indices or [n, {classes}] scores, got shape {dims:?}"
        ))),
    }
}

impl ConfusionMatrix {
    /// From true `labels` (`[n]` class indices or `[n, classes]` one-hot) and a model's
    /// `predictions` (`[n, classes]` scores; the largest is the predicted class).
    pub fn from_predictions(labels: &Array, predictions: &Array) -> Result<Self> {
        let &[n, classes] = predictions.dims() else {
            return Err(Error::Data(format!(
                "predictions must be [n, classes] scores, got shape {:?}",
                predictions.dims()
            )));
        };
        if labels.dims()[0] != n {
            return Err(Error::Data(format!("{} labels for {n} predictions", labels.dims()[0])));
        }
        let truth = classes_of(labels, classes, "labels")?;
        let predicted = classes_of(predictions, classes, "predictions")?;
        let mut counts = vec![0; classes * classes];
        for (t, p) in truth.into_iter().zip(predicted) {
            counts[t * classes + p] += 1;
        }
        Ok(ConfusionMatrix { classes, counts })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Samples of class `truth` predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[truth * self.classes + predicted]
    }

    /// The share of samples on the diagonal.
    pub fn accuracy(&self) -> f32 {
        let total: usize = self.counts.iter().sum();
        let right: usize = (0..self.classes).map(|c| self.count(c, c)).sum();
        right as f32 / total.max(1) as f32
    }

    /// The table as text: a header of predicted classes, one row per true class.
    pub fn to_table(&self) -> String {
        let width = self.counts.iter().max().map_or(1, |m| m.to_string().len()).max(3);
        let mut out = format!("{:>10} |", "true \\ pred");
        for p in 0..self.classes {
            out += &format!(" {p:>width$}");
        }
        out += "\n";
        out += &format!("{}\n", "-".repeat(12 + (width + 1) * self.classes));
        for t in 0..self.classes {
            out += &format!("{t:>11} |");
            for p in 0..self.classes {
                out += &format!(" {:>width$}", self.count(t, p));
            }
            out += "\n";
        }
        out
    }

    /// Draws the matrix as a PNG heat map (each row shaded by its share of the true class,
    /// counts written in the cells when a font is available; see [`crate::history`]'s plot).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let fail = |message: String| Error::Output { path: path.to_path_buf(), message };
        const CELL: u32 = 48;
        const MARGIN: u32 = 40;
        let side = MARGIN + CELL * self.classes as u32 + 8;
        let mut rgb = vec![0u8; (side * side * 3) as usize];
        let font = crate::history::plot::register_font().is_ok();
        {
            let area = BitMapBackend::with_buffer(&mut rgb, (side, side)).into_drawing_area();
            area.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
            for t in 0..self.classes {
                let row_total: usize = (0..self.classes).map(|p| self.count(t, p)).sum();
                for p in 0..self.classes {
                    let share = self.count(t, p) as f64 / row_total.max(1) as f64;
                    // White to matplotlib's "Blues" darkest blue.
                    let shade = |full: u8| (255.0 - (255.0 - full as f64) * share) as u8;
                    let colour = RGBColor(shade(8), shade(48), shade(107));
                    let (x, y) = ((MARGIN + CELL * p as u32) as i32, (MARGIN + CELL * t as u32) as i32);
                    let cell = Rectangle::new([(x, y), (x + CELL as i32, y + CELL as i32)], colour.filled());
                    area.draw(&cell).map_err(|e| fail(e.to_string()))?;
                    if font {
                        let ink = if share > 0.5 { &WHITE } else { &BLACK };
                        let style = ("sans-serif", 13).into_font().color(ink);
                        let text = Text::new(self.count(t, p).to_string(), (x + 4, y + 16), style);
                        area.draw(&text).map_err(|e| fail(e.to_string()))?;
                    }
                }
                if font {
                    let style = ("sans-serif", 14).into_font().color(&BLACK);
                    let row = (MARGIN + CELL * t as u32 + CELL / 2) as i32;
                    let column = (MARGIN + CELL * t as u32 + CELL / 2) as i32;
                    area.draw(&Text::new(t.to_string(), (16, row - 6), style.clone()))
                        .map_err(|e| fail(e.to_string()))?;
                    area.draw(&Text::new(t.to_string(), (column - 4, 16), style))
                        .map_err(|e| fail(e.to_string()))?;
                }
            }
            area.present().map_err(|e| fail(e.to_string()))?;
        }
        crate::visualize::save_png(path, side, side, png::ColorType::Rgb, &rgb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> ConfusionMatrix {
        let labels = Array::new(vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0], [3, 2]).unwrap();
        // The last row ties: the first class wins, as argmax does.
        let scores = Array::new(vec![0.6, 0.4, 0.2, 0.8, 0.5, 0.5], [3, 2]).unwrap();
        ConfusionMatrix::from_predictions(&labels, &scores).unwrap()
    }

    #[test]
    fn counts_pairs_of_true_and_predicted_classes() {
        let m = example();
        assert_eq!(m.counts, vec![1, 0, 1, 1]);
        let by_index = Array::new(vec![0.0, 1.0, 1.0], [3]).unwrap();
        let scores = Array::new(vec![0.6, 0.4, 0.2, 0.8, 0.5, 0.5], [3, 2]).unwrap();
        assert_eq!(ConfusionMatrix::from_predictions(&by_index, &scores).unwrap(), m);
        assert!((m.accuracy() - 2.0 / 3.0).abs() < 1e-6);
        let table = m.to_table();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(rows[2].ends_with("  1   0") && rows[3].ends_with("  1   1"), "{table}");
    }

    #[test]
    fn bad_labels_are_refused() {
        let scores = Array::new(vec![0.6, 0.4, 0.2, 0.8], [2, 2]).unwrap();
        let out_of_range = Array::new(vec![0.0, 2.0], [2]).unwrap();
        let err = ConfusionMatrix::from_predictions(&out_of_range, &scores).unwrap_err().to_string();
        assert!(err.contains("labels[1] = 2"), "{err}");
        let too_few = Array::new(vec![0.0], [1]).unwrap();
        assert!(ConfusionMatrix::from_predictions(&too_few, &scores).is_err());
        let wide = Array::new(vec![0.0; 6], [2, 3]).unwrap();
        assert!(ConfusionMatrix::from_predictions(&wide, &scores)
            .unwrap_err()
            .to_string()
            .contains("[2, 3]"));
    }

    #[test]
    fn draws_a_png_of_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        example().save_png(&path).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (40 + 2 * 48 + 8, 40 + 2 * 48 + 8));
    }
}
