//! Keras' weight initializers (`keras.initializers`), for the `kernel_initializer` and
//! `bias_initializer` of [`Dense`](crate::layers::Dense) and [`Conv2D`](crate::layers::Conv2D).
//!
//! Each draws from the model's seeded [`Initializer`], so a model built twice with the same
//! seed is identical; the formulas are Keras'. The `VarianceScaling` family computes
//! `scale / n`, with `n` the fan in, the fan out or their mean as Keras' `compute_fans` finds
//! them from the weight's shape (a dense kernel `[inputs, units]`: `inputs`, `units`; a
//! convolution kernel `[kh, kw, in, out]`: `kh * kw * in`, `kh * kw * out`; a bias `[n]`: `n`,
//! `n`), then draws uniformly on `[-sqrt(3 scale / n), sqrt(3 scale / n))` or from a normal
//! truncated at two standard deviations whose standard deviation before truncation is
//! `sqrt(scale / n) / 0.87962566103423978` (so that after it, it is `sqrt(scale / n)`).
//!
//! | initializer | distribution | `scale`, `n` |
//! |---|---|---|
//! | `GlorotUniform` (kernel default) | uniform | 1, `(fan_in + fan_out) / 2` |
//! | `GlorotNormal` | truncated normal | 1, `(fan_in + fan_out) / 2` |
//! | `HeUniform` | uniform | 2, `fan_in` |
//! | `HeNormal` | truncated normal | 2, `fan_in` |
//! | `LecunUniform` | uniform | 1, `fan_in` |
//! | `LecunNormal` | truncated normal | 1, `fan_in` |
//!
//! `Zeros` (bias default), `Ones` and `Constant(value)` fill; `RandomNormal(mean, stddev)` (not
//! truncated; Keras' defaults 0, 0.05) and `RandomUniform(minval, maxval)` (defaults -0.05,
//! 0.05) draw as their names say.
//!
//! A layer's config holds a non-default initializer as Keras serialises it:
//! `"kernel_initializer": {"class_name": "HeNormal", "config": {"seed": null}}`. Keras' per-
//! initializer `seed` is refused when not null (every weight is drawn from the model's seed),
//! and so are the initializers not implemented here (`Orthogonal`, `TruncatedNormal`,
//! `VarianceScaling`, `Identity`, ...), by name.

use std::str::FromStr;

use serde_json::{json, Map, Value};
use tensor::Tensor;

use crate::error::{Error, Result};
use crate::init::Initializer;

/// Keras' truncation factor: the standard deviation of a standard normal truncated to
/// `[-2, 2]`.
pub const TRUNCATED_NORMAL_STDDEV: f64 = 0.879_625_661_034_239_8;

/// How a weight is initialised (Keras' `keras.initializers` of the same names).
///
/// ```
/// use nn::initializers::WeightInit;
/// use nn::layers::{Conv2D, Dense};
/// let conv = Conv2D::new(8, (3, 3)).kernel_initializer(WeightInit::HeNormal);
/// let dense = Dense::new(10).bias_initializer(WeightInit::Constant(0.1));
/// assert_eq!("he_normal".parse::<WeightInit>()?, WeightInit::HeNormal);
/// # Ok::<(), nn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeightInit {
    /// Uniform, `limit = sqrt(6 / (fan_in + fan_out))` (Keras' kernel default).
    GlorotUniform,
    /// Truncated normal, `stddev = sqrt(2 / (fan_in + fan_out))` after truncation.
    GlorotNormal,
    /// Uniform, `limit = sqrt(6 / fan_in)`.
    HeUniform,
    /// Truncated normal, `stddev = sqrt(2 / fan_in)` after truncation.
    HeNormal,
    /// Uniform, `limit = sqrt(3 / fan_in)`.
    LecunUniform,
    /// Truncated normal, `stddev = sqrt(1 / fan_in)` after truncation.
    LecunNormal,
    /// All zeros (Keras' bias default).
    Zeros,
    /// All ones.
    Ones,
    /// Every element the value.
    Constant(f32),
    /// Normal (not truncated) of this mean and standard deviation.
    RandomNormal {
        /// Mean (Keras' default 0).
        mean: f32,
        /// Standard deviation (Keras' default 0.05).
        stddev: f32,
    },
    /// Uniform on `[minval, maxval)`.
    RandomUniform {
        /// Lower bound (Keras' default -0.05).
        minval: f32,
        /// Upper bound (Keras' default 0.05).
        maxval: f32,
    },
}

/// Keras' `(fan_in, fan_out)` of a weight of `shape` (`compute_fans`): `[n]` has `n` and `n`,
/// `[a, b]` has `a` and `b`, and a kernel `[..., in, out]` multiplies both by its receptive
/// field (the product of the leading sizes).
pub fn compute_fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        &[n] => (n, n),
        &[a, b] => (a, b),
        [receptive @ .., inputs, outputs] => {
            let field: usize = receptive.iter().product();
            (inputs * field, outputs * field)
        }
    }
}

/// Keras' `VarianceScaling` modes.
enum Mode {
    FanIn,
    FanAvg,
}

impl WeightInit {
    /// Keras' `RandomNormal()`: mean 0, stddev 0.05.
    pub const RANDOM_NORMAL: WeightInit = WeightInit::RandomNormal { mean: 0.0, stddev: 0.05 };
    /// Keras' `RandomUniform()`: on `[-0.05, 0.05)`.
    pub const RANDOM_UNIFORM: WeightInit = WeightInit::RandomUniform { minval: -0.05, maxval: 0.05 };

    /// Keras' class name (`"HeNormal"`, ...).
    pub fn keras_class_name(self) -> &'static str {
        match self {
            WeightInit::GlorotUniform => "GlorotUniform",
            WeightInit::GlorotNormal => "GlorotNormal",
            WeightInit::HeUniform => "HeUniform",
            WeightInit::HeNormal => "HeNormal",
            WeightInit::LecunUniform => "LecunUniform",
            WeightInit::LecunNormal => "LecunNormal",
            WeightInit::Zeros => "Zeros",
            WeightInit::Ones => "Ones",
            WeightInit::Constant(_) => "Constant",
            WeightInit::RandomNormal { .. } => "RandomNormal",
            WeightInit::RandomUniform { .. } => "RandomUniform",
        }
    }

    /// Checks the parameters: finite, a standard deviation not negative, `minval < maxval`.
    pub fn check(self) -> Result<()> {
        self.problem().map_or(Ok(()), |why| Err(Error::Build(why)))
    }

    /// What is wrong with the parameters, if anything.
    fn problem(self) -> Option<String> {
        let why = match self {
            WeightInit::Constant(v) if !v.is_finite() => format!("value {v} is not finite"),
            WeightInit::RandomNormal { mean, stddev }
                if !(mean.is_finite() && stddev.is_finite() && stddev >= 0.0) =>
            {
                format!("mean {mean} and stddev {stddev} must be finite, stddev not negative")
            }
            WeightInit::RandomUniform { minval, maxval }
                if !(minval.is_finite() && maxval.is_finite() && minval < maxval) =>
            {
                format!("minval {minval} and maxval {maxval} must be finite, minval < maxval")
            }
            _ => return None,
        };
        Some(format!("{} initializer: {why}", self.keras_class_name()))
    }

    /// `VarianceScaling`'s `(scale, mode, uniform)` for the initializers of that family.
    fn variance_scaling(self) -> Option<(f64, Mode, bool)> {
        Some(match self {
            WeightInit::GlorotUniform => (1.0, Mode::FanAvg, true),
            WeightInit::GlorotNormal => (1.0, Mode::FanAvg, false),
            WeightInit::HeUniform => (2.0, Mode::FanIn, true),
            WeightInit::HeNormal => (2.0, Mode::FanIn, false),
            WeightInit::LecunUniform => (1.0, Mode::FanIn, true),
            WeightInit::LecunNormal => (1.0, Mode::FanIn, false),
            _ => return None,
        })
    }

    /// A variable of `shape` initialised this way, drawn from `init` (the fans are Keras',
    /// from the shape: see [`compute_fans`]).
    pub fn create(self, init: &mut Initializer, shape: &[usize]) -> Result<Tensor> {
        self.check()?;
        let (fan_in, fan_out) = compute_fans(shape);
        if self == WeightInit::GlorotUniform {
            // The draws every model has always made, bit for bit.
            return init.glorot_uniform(shape, fan_in, fan_out);
        }
        if let Some((scale, mode, uniform)) = self.variance_scaling() {
            let n = match mode {
                Mode::FanIn => fan_in as f64,
                Mode::FanAvg => (fan_in + fan_out) as f64 / 2.0,
            };
            let scale = scale / n.max(1.0);
            return if uniform {
                let limit = (3.0 * scale).sqrt() as f32;
                init.uniform(shape, -limit, limit)
            } else {
                init.truncated_normal(shape, 0.0, (scale.sqrt() / TRUNCATED_NORMAL_STDDEV) as f32)
            };
        }
        match self {
            WeightInit::Zeros => init.zeros(shape),
            WeightInit::Ones => init.ones(shape),
            WeightInit::Constant(value) => init.constant(shape, value),
            WeightInit::RandomNormal { mean, stddev } => init.normal(shape, mean, stddev),
            WeightInit::RandomUniform { minval, maxval } => init.uniform(shape, minval, maxval),
            _ => unreachable!("the VarianceScaling family is drawn above"),
        }
    }

    /// Keras' serialised form: `{"class_name": "HeNormal", "config": {"seed": null}}`.
    pub fn to_json(self) -> Value {
        let config = match self {
            WeightInit::Zeros | WeightInit::Ones => json!({}),
            WeightInit::Constant(value) => json!({ "value": value }),
            WeightInit::RandomNormal { mean, stddev } => {
                json!({ "seed": null, "mean": mean, "stddev": stddev })
            }
            WeightInit::RandomUniform { minval, maxval } => {
                json!({ "seed": null, "minval": minval, "maxval": maxval })
            }
            _ => json!({ "seed": null }),
        };
        json!({ "class_name": self.keras_class_name(), "config": config })
    }

    /// An initializer as Keras serialises it (`{"class_name": .., "config": {..}}`, with or
    /// without `"module"` and `"registered_name"`) or names it (`"he_normal"`, `"HeNormal"`).
    /// What this library does not implement is refused by name: another class, a `seed` other
    /// than null, `input_axes` / `output_axes`, an unknown config key.
    pub fn from_json(value: &Value) -> std::result::Result<WeightInit, String> {
        let object = match value {
            Value::String(name) => return by_name(name).ok_or_else(|| unknown(name)),
            Value::Object(object) => object,
            other => return Err(format!("initializer {other} is neither a name nor a class and config")),
        };
        let allowed = ["class_name", "config", "module", "registered_name"];
        if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("initializer: unknown key '{key}'"));
        }
        let class = object.get("class_name").and_then(Value::as_str).ok_or("initializer: no 'class_name'")?;
        let mut init = by_name(class).ok_or_else(|| unknown(class))?;
        let empty = Map::new();
        let config = match object.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(config)) => config,
            Some(other) => return Err(format!("initializer {class}: config {other} is not an object")),
        };
        let random = !matches!(init, WeightInit::Zeros | WeightInit::Ones | WeightInit::Constant(_));
        let scaling = init.variance_scaling().is_some();
        for (key, v) in config {
            let number = || {
                v.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| format!("initializer {class}: '{key}' {v} is not a number"))
            };
            match (key.as_str(), &mut init) {
                ("seed", _) if random => {
                    if !v.is_null() {
                        return Err(format!(
                            "initializer {class}: seed {v} is not supported: every weight is drawn from the \
                             model's seed (Sequential::seed, Model::with_device)"
                        ));
                    }
                }
                ("input_axes" | "output_axes", _) if scaling => {
                    if !v.is_null() {
                        return Err(format!(
                            "initializer {class}: {key} {v} is not supported: the fans are Keras' defaults \
                             from the weight's shape"
                        ));
                    }
                }
                ("value", WeightInit::Constant(value)) => {
                    *value = number().map_err(|e| format!("{e} (only one number for every element)"))?
                }
                ("mean", WeightInit::RandomNormal { mean, .. }) => *mean = number()?,
                ("stddev", WeightInit::RandomNormal { stddev, .. }) => *stddev = number()?,
                ("minval", WeightInit::RandomUniform { minval, .. }) => *minval = number()?,
                ("maxval", WeightInit::RandomUniform { maxval, .. }) => *maxval = number()?,
                _ => return Err(format!("initializer {class}: unknown config key '{key}' ({v})")),
            }
        }
        init.problem().map_or(Ok(init), Err)
    }
}

impl FromStr for WeightInit {
    type Err = Error;
    /// Keras' identifiers (`keras.initializers.get`): the class names and their snake-case
    /// forms (`"HeNormal"`, `"he_normal"`), and the aliases `"zero"`, `"one"`, `"normal"`,
    /// `"uniform"`; the parameterised ones take Keras' defaults (`Constant(0)`,
    /// `RandomNormal(0, 0.05)`, `RandomUniform(-0.05, 0.05)`).
    fn from_str(name: &str) -> Result<Self> {
        by_name(name).ok_or_else(|| Error::Build(unknown(name)))
    }
}

fn by_name(name: &str) -> Option<WeightInit> {
    Some(match name {
        "GlorotUniform" | "glorot_uniform" => WeightInit::GlorotUniform,
        "GlorotNormal" | "glorot_normal" => WeightInit::GlorotNormal,
        "HeUniform" | "he_uniform" => WeightInit::HeUniform,
        "HeNormal" | "he_normal" => WeightInit::HeNormal,
        "LecunUniform" | "lecun_uniform" => WeightInit::LecunUniform,
        "LecunNormal" | "lecun_normal" => WeightInit::LecunNormal,
        "Zeros" | "zeros" | "zero" => WeightInit::Zeros,
        "Ones" | "ones" | "one" => WeightInit::Ones,
        "Constant" | "constant" => WeightInit::Constant(0.0),
        "RandomNormal" | "random_normal" | "normal" => WeightInit::RANDOM_NORMAL,
        "RandomUniform" | "random_uniform" | "uniform" => WeightInit::RANDOM_UNIFORM,
        _ => return None,
    })
}

fn unknown(name: &str) -> String {
    format!(
        "unknown initializer '{name}' (implemented: GlorotUniform, GlorotNormal, HeUniform, HeNormal, \
         LecunUniform, LecunNormal, Zeros, Ones, Constant, RandomNormal, RandomUniform)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_are_keras() {
        assert_eq!(compute_fans(&[7]), (7, 7));
        assert_eq!(compute_fans(&[784, 100]), (784, 100));
        assert_eq!(compute_fans(&[5, 5, 3, 20]), (75, 500));
        assert_eq!(compute_fans(&[]), (1, 1));
    }

    #[test]
    fn keras_forms_are_read() {
        let keras = json!({"module": "keras.initializers", "class_name": "GlorotNormal",
            "config": {"seed": null, "input_axes": null, "output_axes": null}, "registered_name": null});
        assert_eq!(WeightInit::from_json(&keras), Ok(WeightInit::GlorotNormal));
        let constant = json!({"class_name": "Constant", "config": {"value": 0.5}});
        assert_eq!(WeightInit::from_json(&constant), Ok(WeightInit::Constant(0.5)));
        let normal =
            json!({"class_name": "RandomNormal", "config": {"seed": null, "mean": 1.0, "stddev": 0.5}});
        assert_eq!(WeightInit::from_json(&normal), Ok(WeightInit::RandomNormal { mean: 1.0, stddev: 0.5 }));
        let uniform = json!({"class_name": "RandomUniform", "config": {"minval": -1.0}});
        assert_eq!(
            WeightInit::from_json(&uniform),
            Ok(WeightInit::RandomUniform { minval: -1.0, maxval: 0.05 })
        );
        assert_eq!(WeightInit::from_json(&json!("he_uniform")), Ok(WeightInit::HeUniform));
        assert_eq!(WeightInit::from_json(&json!("zero")), Ok(WeightInit::Zeros));
    }

    #[test]
    fn what_is_not_implemented_is_refused_by_name() {
        let err = |v: Value| WeightInit::from_json(&v).unwrap_err();
        assert!(err(json!({"class_name": "Orthogonal", "config": {}}))
            .contains("unknown initializer 'Orthogonal'"));
        assert!(err(json!("truncated_normal")).contains("unknown initializer 'truncated_normal'"));
        assert!(
            err(json!({"class_name": "HeNormal", "config": {"seed": 3}})).contains("seed 3 is not supported")
        );
        let axes = json!({"class_name": "HeNormal", "config": {"input_axes": [0]}});
        assert!(err(axes).contains("input_axes [0] is not supported"));
        assert!(err(json!({"class_name": "Zeros", "config": {"seed": null}}))
            .contains("unknown config key 'seed'"));
        let uniform = json!({"class_name": "RandomUniform", "config": {"minval": 1.0, "maxval": 1.0}});
        assert!(err(uniform).contains("minval < maxval"));
        let constant = json!({"class_name": "Constant", "config": {"value": [1.0, 2.0]}});
        assert!(err(constant).contains("only one number"));
        assert!(err(json!({"class_name": "Ones", "config": {}, "other": 1})).contains("unknown key 'other'"));
    }
}
