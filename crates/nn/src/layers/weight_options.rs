//! How a layer's kernel and bias are initialised and regularised (Keras' `kernel_initializer`,
//! `bias_initializer`, `kernel_regularizer`, `bias_regularizer`), held once for `Dense` and
//! `Conv2D`, with their builders (`weight_option_builders!`), saved form and penalties.

use serde_json::Value;
use tensor::Tensor;

use crate::error::Result;
use crate::initializers::WeightInit;
use crate::regularizers::Regularizer;

/// A layer's kernel and bias settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WeightOptions {
    pub kernel_initializer: WeightInit,
    pub bias_initializer: WeightInit,
    pub kernel_regularizer: Option<Regularizer>,
    pub bias_regularizer: Option<Regularizer>,
}

impl Default for WeightOptions {
    /// Keras' defaults: Glorot-uniform kernel, zero bias, no penalties.
    fn default() -> Self {
        WeightOptions {
            kernel_initializer: WeightInit::GlorotUniform,
            bias_initializer: WeightInit::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
        }
    }
}

impl WeightOptions {
    /// Refuses penalties with negative or non-finite factors.
    pub fn check(&self) -> Result<()> {
        self.kernel_regularizer.iter().chain(&self.bias_regularizer).try_for_each(Regularizer::check)
    }

    /// The summed penalties of `kernel` and `bias`, `None` without regularizers.
    pub fn penalty(&self, kernel: Option<&Tensor>, bias: Option<&Tensor>) -> Result<Option<Tensor>> {
        let mut total: Option<Tensor> = None;
        for (regularizer, weight) in [(self.kernel_regularizer, kernel), (self.bias_regularizer, bias)] {
            if let (Some(r), Some(w)) = (regularizer, weight) {
                let p = r.penalty(w)?;
                total = Some(match total {
                    Some(t) => t.add(&p)?,
                    None => p,
                });
            }
        }
        Ok(total)
    }

    /// Adds the settings that are not the defaults to a layer's config. (Keras writes all four
    /// always; leaving the defaults out keeps the configs, and files, of default models as they
    /// have always been, and Keras reads a missing key as its default.)
    pub fn write_config(&self, config: &mut Value) {
        let defaults = WeightOptions::default();
        if self.kernel_initializer != defaults.kernel_initializer {
            config["kernel_initializer"] = self.kernel_initializer.to_json();
        }
        if self.bias_initializer != defaults.bias_initializer {
            config["bias_initializer"] = self.bias_initializer.to_json();
        }
        if let Some(r) = self.kernel_regularizer {
            config["kernel_regularizer"] = r.to_json();
        }
        if let Some(r) = self.bias_regularizer {
            config["bias_regularizer"] = r.to_json();
        }
    }
}

/// The builder methods of a layer holding a `weights: WeightOptions` field.
macro_rules! weight_option_builders {
    () => {
        /// All four settings at once (a saved config's).
        pub(crate) fn with_weight_options(
            mut self,
            weights: crate::layers::weight_options::WeightOptions,
        ) -> Self {
            self.weights = weights;
            self
        }
        /// How the kernel is initialised (Keras' `kernel_initializer`; default
        /// [`WeightInit::GlorotUniform`](crate::initializers::WeightInit::GlorotUniform)).
        pub fn kernel_initializer(mut self, init: crate::initializers::WeightInit) -> Self {
            self.weights.kernel_initializer = init;
            self
        }
        /// How the bias is initialised (Keras' `bias_initializer`; default
        /// [`WeightInit::Zeros`](crate::initializers::WeightInit::Zeros)).
        pub fn bias_initializer(mut self, init: crate::initializers::WeightInit) -> Self {
            self.weights.bias_initializer = init;
            self
        }
        /// A penalty on the kernel added to the loss (Keras' `kernel_regularizer`).
        pub fn kernel_regularizer(mut self, regularizer: crate::regularizers::Regularizer) -> Self {
            self.weights.kernel_regularizer = Some(regularizer);
            self
        }
        /// A penalty on the bias added to the loss (Keras' `bias_regularizer`).
        pub fn bias_regularizer(mut self, regularizer: crate::regularizers::Regularizer) -> Self {
            self.weights.bias_regularizer = Some(regularizer);
            self
        }
    };
}
