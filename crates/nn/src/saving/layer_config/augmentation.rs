//! The augmentation layers from their Keras configs.

use serde_json::Value;

use super::Described;
use crate::layers::augmentation::{fill_mode_of, interpolation_of};
use crate::layers::{Factor, Layer, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};

impl Described<'_> {
    /// A factor: a number `f` (the range `[-|f|, |f|]`) or a pair of bounds.
    fn factor(&self, key: &str) -> Result<Factor, String> {
        let v = self.config.get(key);
        if let Some(f) = v.and_then(Value::as_f64) {
            return Ok(Factor::from(f as f32));
        }
        match v.and_then(Value::as_array).map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>()) {
            Some(pair) if pair.len() == 2 && pair.iter().all(Option::is_some) => {
                Ok(Factor::from((pair[0].unwrap_or_default() as f32, pair[1].unwrap_or_default() as f32)))
            }
            _ => Err(self.missing(key, "a number or a pair of numbers")),
        }
    }

    /// Keras' `RandomFlip`, `RandomTranslation`, `RandomRotation` or `RandomZoom`.
    pub(super) fn augmentation(&self) -> Result<Box<dyn Layer>, String> {
        self.channels_last()?;
        let name = self.name.clone();
        let seed = self.seed()?;
        let text = |key: &str| self.config.get(key).and_then(Value::as_str);
        let fill_mode = || {
            let mode = text("fill_mode").and_then(fill_mode_of);
            mode.ok_or_else(|| {
                self.missing("fill_mode", "\"reflect\", \"wrap\", \"constant\" or \"nearest\"")
            })
        };
        let interpolation = || {
            let i = text("interpolation").and_then(interpolation_of);
            i.ok_or_else(|| self.missing("interpolation", "\"nearest\" or \"bilinear\""))
        };
        macro_rules! resampled {
            ($layer:expr) => {{
                let layer = $layer.fill_mode(fill_mode()?).interpolation(interpolation()?);
                let layer = layer.fill_value(self.f32("fill_value")?).name(name);
                match seed {
                    Some(seed) => Box::new(layer.seed(seed)) as Box<dyn Layer>,
                    None => Box::new(layer),
                }
            }};
        }
        Ok(match self.class {
            "RandomFlip" => {
                let mode = text("mode").ok_or_else(|| self.missing("mode", "a flip mode"))?;
                let layer =
                    RandomFlip::new(mode).map_err(|e| format!("'{}' (RandomFlip): {e}", self.name))?;
                let layer = layer.name(name);
                match seed {
                    Some(seed) => Box::new(layer.seed(seed)),
                    None => Box::new(layer),
                }
            }
            "RandomTranslation" => {
                resampled!(RandomTranslation::new(
                    self.factor("height_factor")?,
                    self.factor("width_factor")?
                ))
            }
            "RandomRotation" => resampled!(RandomRotation::new(self.factor("factor")?)),
            "RandomZoom" => {
                let zoom = RandomZoom::new(self.factor("height_factor")?);
                match self.config.get("width_factor") {
                    None | Some(Value::Null) => resampled!(zoom),
                    Some(_) => resampled!(zoom.width_factor(self.factor("width_factor")?)),
                }
            }
            other => unreachable!("layer() sends only augmentation classes here, not {other}"),
        })
    }
}
