//! Layers from their saved configs (what [`Layer::config`](crate::layers::Layer::config) and
//! [`MergeLayer::config`](crate::functional::MergeLayer::config) wrote), each error naming the
//! layer and the field.

use serde_json::Value;
use tensor::Padding;

use crate::activation::Activation;
use crate::initializers::WeightInit;
use crate::layers::weight_options::WeightOptions;
use crate::layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, DataFormat, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, L2Pooling2D, Layer, LeakyReLU, MaxPooling2D, ReLU, Rescaling,
    Reshape, SidePadding, SpatialDropout2D, UpSampling2D, ZeroPadding2D,
};
use crate::model::merge::{
    Add, Average, Concatenate, Divide, Maximum, MergeLayer, Minimum, Multiply, Subtract,
};
use crate::regularizers::Regularizer;

mod augmentation;

/// Keras' name of a padding: `"valid"` or `"same"`.
pub fn padding_name(padding: Padding) -> &'static str {
    match padding {
        Padding::Valid => "valid",
        Padding::Same => "same",
    }
}

/// The sizes in a JSON list.
pub(crate) fn usizes(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?.iter().map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok())).collect()
}

/// A saved layer's description: its class, name and config.
pub(crate) struct Described<'a> {
    pub class: &'a str,
    pub name: String,
    pub config: &'a Value,
}

impl<'a> Described<'a> {
    /// Reads `{"class_name": .., "name": .., "config": ..}`.
    pub fn read(desc: &'a Value) -> Result<Self, String> {
        let class = desc.get("class_name").and_then(Value::as_str).ok_or("no 'class_name'")?;
        let name = desc.get("name").and_then(Value::as_str).ok_or("no 'name'")?.to_string();
        let config = desc.get("config").ok_or_else(|| format!("layer '{name}' has no 'config'"))?;
        Ok(Described { class, name, config })
    }

    /// Whether the config marks the layer frozen (`"trainable": false`; absent means true).
    pub fn trainable(&self) -> bool {
        self.config.get("trainable").and_then(Value::as_bool).unwrap_or(true)
    }

    fn missing(&self, key: &str, what: &str) -> String {
        format!("'{}' ({}): config field '{key}' is missing or not {what}", self.name, self.class)
    }
    fn usize(&self, key: &str) -> Result<usize, String> {
        let v = self.config.get(key).and_then(Value::as_u64).and_then(|v| usize::try_from(v).ok());
        v.ok_or_else(|| self.missing(key, "a size"))
    }
    fn f32(&self, key: &str) -> Result<f32, String> {
        let v = self.config.get(key).and_then(Value::as_f64);
        v.map(|v| v as f32).ok_or_else(|| self.missing(key, "a number"))
    }
    /// A number, or `null` (or absent) for none.
    fn optional_f32(&self, key: &str) -> Result<Option<f32>, String> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.f32(key).map(Some),
        }
    }
    /// One number; a per-channel list or array (which Keras allows for `Rescaling`) is refused.
    fn scalar(&self, key: &str) -> Result<f32, String> {
        match self.config.get(key) {
            Some(v @ (Value::Array(_) | Value::Object(_))) => Err(format!(
                "'{}' ({}): config field '{key}' is {v}, but only one number for every value is \
                 supported (not one per channel)",
                self.name, self.class
            )),
            _ => self.f32(key),
        }
    }
    /// Refuses a config field this library does not implement unless it has its default.
    fn only(&self, key: &str, default: &Value, why: &str) -> Result<(), String> {
        match self.config.get(key) {
            Some(v) if v != default => {
                Err(format!("'{}' ({}): {key} {v} is not supported: {why}", self.name, self.class))
            }
            _ => Ok(()),
        }
    }
    /// An axis: an integer, or (as Keras may write it) a list of one.
    fn axis(&self, key: &str) -> Result<isize, String> {
        let v = self.config.get(key);
        let one = v.and_then(Value::as_array).filter(|a| a.len() == 1).map(|a| &a[0]);
        let axis = v.and_then(Value::as_i64).or_else(|| one.and_then(Value::as_i64));
        axis.map(|a| a as isize).ok_or_else(|| self.missing(key, "an axis"))
    }
    /// A layer's `seed`: `null` (or absent) for none, else a non-negative integer.
    fn seed(&self) -> Result<Option<u64>, String> {
        match self.config.get("seed") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                v.as_u64().map(Some).ok_or_else(|| self.missing("seed", "null or a non-negative integer"))
            }
        }
    }
    fn bool(&self, key: &str) -> Result<bool, String> {
        self.config.get(key).and_then(Value::as_bool).ok_or_else(|| self.missing(key, "true or false"))
    }
    /// Refuses `channels_first` for the layers built only for `channels_last` (read by
    /// [`Described::data_format`]; a config without one is Keras' default).
    fn channels_last(&self) -> Result<(), String> {
        match self.data_format()? {
            DataFormat::ChannelsLast => Ok(()),
            DataFormat::ChannelsFirst => Err(format!(
                "'{}' ({}): data_format \"channels_first\" is not supported (only \"channels_last\")",
                self.name, self.class
            )),
        }
    }
    /// `data_format`: absent means Keras' default, `channels_last`.
    fn data_format(&self) -> Result<DataFormat, String> {
        match self.config.get("data_format") {
            None => Ok(DataFormat::ChannelsLast),
            Some(v) => v
                .as_str()
                .and_then(DataFormat::from_keras_name)
                .ok_or_else(|| self.missing("data_format", "\"channels_last\" or \"channels_first\"")),
        }
    }
    fn pair(&self, key: &str) -> Result<(usize, usize), String> {
        match self.config.get(key).and_then(usizes).as_deref() {
            Some(&[a, b]) => Ok((a, b)),
            _ => Err(self.missing(key, "a pair of sizes")),
        }
    }
    fn activation(&self) -> Result<Activation, String> {
        let name = self.config.get("activation").and_then(Value::as_str);
        name.and_then(|n| n.parse().ok()).ok_or_else(|| self.missing("activation", "a known activation"))
    }
    /// A kernel and bias's initializers and regularizers; absent ones are the defaults.
    fn weight_options(&self) -> Result<WeightOptions, String> {
        Ok(WeightOptions {
            kernel_initializer: self.initializer("kernel_initializer", WeightInit::GlorotUniform)?,
            bias_initializer: self.initializer("bias_initializer", WeightInit::Zeros)?,
            kernel_regularizer: self.regularizer("kernel_regularizer")?,
            bias_regularizer: self.regularizer("bias_regularizer")?,
        })
    }
    /// A weight's regularizer (`kernel_regularizer`, ...): `null` or absent for none.
    fn regularizer(&self, key: &str) -> Result<Option<Regularizer>, String> {
        let value = self.config.get(key).cloned().unwrap_or(Value::Null);
        Regularizer::from_json(&value).map_err(|e| format!("'{}' ({}): {key}: {e}", self.name, self.class))
    }
    /// A weight's initializer (`kernel_initializer`, ...), `default` when absent.
    fn initializer(&self, key: &str, default: WeightInit) -> Result<WeightInit, String> {
        match self.config.get(key) {
            None => Ok(default),
            Some(v) => {
                WeightInit::from_json(v).map_err(|e| format!("'{}' ({}): {key}: {e}", self.name, self.class))
            }
        }
    }
    fn padding(&self) -> Result<Padding, String> {
        match self.config.get("padding").and_then(Value::as_str) {
            Some("valid") => Ok(Padding::Valid),
            Some("same") => Ok(Padding::Same),
            _ => Err(self.missing("padding", "\"valid\" or \"same\"")),
        }
    }

    /// The one-input layer described, named as saved; `None` for a class that is not one.
    pub fn layer(&self) -> Result<Option<Box<dyn Layer>>, String> {
        let name = self.name.clone();
        let layer: Box<dyn Layer> = match self.class {
            "Dense" => Box::new(
                Dense::new(self.usize("units")?)
                    .activation(self.activation()?)
                    .use_bias(self.bool("use_bias")?)
                    .with_weight_options(self.weight_options()?)
                    .name(name),
            ),
            "Conv2D" => Box::new({
                // Keras writes both; other values would be silently built wrong.
                self.only(
                    "dilation_rate",
                    &serde_json::json!([1, 1]),
                    "dilated convolutions are not implemented",
                )?;
                self.only("groups", &Value::from(1), "grouped convolutions are not implemented")?;
                Conv2D::new(self.usize("filters")?, self.pair("kernel_size")?)
                    .strides(self.pair("strides")?)
                    .padding(self.padding()?)
                    .activation(self.activation()?)
                    .use_bias(self.bool("use_bias")?)
                    .data_format(self.data_format()?)
                    .with_weight_options(self.weight_options()?)
                    .name(name)
            }),
            "MaxPooling2D" => Box::new(
                MaxPooling2D::new()
                    .pool_size(self.pair("pool_size")?)
                    .strides(self.pair("strides")?)
                    .padding(self.padding()?)
                    .data_format(self.data_format()?)
                    .name(name),
            ),
            "AveragePooling2D" => Box::new(
                AveragePooling2D::new()
                    .pool_size(self.pair("pool_size")?)
                    .strides(self.pair("strides")?)
                    .padding(self.padding()?)
                    .data_format(self.data_format()?)
                    .name(name),
            ),
            "L2Pooling2D" => Box::new(
                L2Pooling2D::new()
                    .pool_size(self.pair("pool_size")?)
                    .strides(self.pair("strides")?)
                    .padding(self.padding()?)
                    .data_format(self.data_format()?)
                    .name(name),
            ),
            "Dropout" => {
                let layer = Dropout::new(self.f32("rate")?).name(name);
                Box::new(match self.seed()? {
                    Some(seed) => layer.seed(seed),
                    None => layer,
                })
            }
            "BatchNormalization" => Box::new(
                BatchNormalization::new()
                    .axis(self.axis("axis")?)
                    .momentum(self.f32("momentum")?)
                    .epsilon(self.f32("epsilon")?)
                    .center(self.bool("center")?)
                    .scale(self.bool("scale")?)
                    .name(name),
            ),
            "Flatten" => Box::new(Flatten::new().name(name)),
            "GlobalAveragePooling2D" => Box::new(
                GlobalAveragePooling2D::new()
                    .keepdims(self.bool("keepdims")?)
                    .data_format(self.data_format()?)
                    .name(name),
            ),
            "GlobalMaxPooling2D" => Box::new(
                GlobalMaxPooling2D::new()
                    .keepdims(self.bool("keepdims")?)
                    .data_format(self.data_format()?)
                    .name(name),
            ),
            "Reshape" => {
                let target = self.config.get("target_shape").and_then(usizes);
                Box::new(
                    Reshape::new(target.ok_or_else(|| self.missing("target_shape", "a list of sizes"))?)
                        .name(name),
                )
            }
            "Activation" => Box::new(ActivationLayer::new(self.activation()?).name(name)),
            "ZeroPadding2D" => {
                self.channels_last()?;
                let padding = self.config.get("padding").and_then(SidePadding::from_json);
                let what = "a size, [height, width] or [[top, bottom], [left, right]]";
                Box::new(ZeroPadding2D::new(padding.ok_or_else(|| self.missing("padding", what))?).name(name))
            }
            "UpSampling2D" => {
                self.channels_last()?;
                let why = "only \"nearest\" interpolation is implemented";
                self.only("interpolation", &Value::from("nearest"), why)?;
                Box::new(UpSampling2D::new().size(self.pair("size")?).name(name))
            }
            "SpatialDropout2D" => {
                self.channels_last()?;
                let layer = SpatialDropout2D::new(self.f32("rate")?).name(name);
                Box::new(match self.seed()? {
                    Some(seed) => layer.seed(seed),
                    None => layer,
                })
            }
            "LeakyReLU" => {
                // Keras 2 wrote the slope as "alpha".
                let keras2 =
                    self.config.get("negative_slope").is_none() && self.config.get("alpha").is_some();
                let key = if keras2 { "alpha" } else { "negative_slope" };
                Box::new(LeakyReLU::new().negative_slope(self.f32(key)?).name(name))
            }
            "ReLU" => Box::new(
                ReLU::new()
                    .max_value(self.optional_f32("max_value")?)
                    .negative_slope(self.f32("negative_slope")?)
                    .threshold(self.f32("threshold")?)
                    .name(name),
            ),
            "Rescaling" => {
                Box::new(Rescaling::new(self.scalar("scale")?).offset(self.scalar("offset")?).name(name))
            }
            "RandomFlip" | "RandomTranslation" | "RandomRotation" | "RandomZoom" => self.augmentation()?,
            _ => return Ok(None),
        };
        Ok(Some(layer))
    }

    /// The merge layer described, named as saved; `None` for a class that is not one.
    pub fn merge(&self) -> Result<Option<Box<dyn MergeLayer>>, String> {
        let name = self.name.clone();
        let merge: Box<dyn MergeLayer> = match self.class {
            "Concatenate" => {
                let axis = self
                    .config
                    .get("axis")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| self.missing("axis", "an axis"))?;
                Box::new(Concatenate::new(axis as isize).name(name))
            }
            "Add" => Box::new(Add::new().name(name)),
            "Subtract" => Box::new(Subtract::new().name(name)),
            "Multiply" => Box::new(Multiply::new().name(name)),
            "Average" => Box::new(Average::new().name(name)),
            "Maximum" => Box::new(Maximum::new().name(name)),
            "Minimum" => Box::new(Minimum::new().name(name)),
            "Divide" => Box::new(Divide::new().name(name)),
            _ => return Ok(None),
        };
        Ok(Some(merge))
    }

    /// The error for a class this library does not have.
    pub fn unknown(&self) -> String {
        format!("unknown layer class '{}' (layer '{}')", self.class, self.name)
    }
}
