//! Activation functions, as Keras names them.

use tensor::Tensor;

use crate::error::{Error, Result};

/// An activation applied after a layer's linear part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// Identity (Keras' `"linear"`, the default).
    #[default]
    Linear,
    /// `max(x, 0)`
    Relu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softmax over the last axis.
    Softmax,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `x` for `x >= 0`, else `0.2 x` (Keras' `leaky_relu` activation; the `LeakyReLU` layer's
    /// default slope is 0.3).
    LeakyRelu,
    /// `x` for `x > 0`, else `exp(x) - 1`.
    Elu,
    /// `x * Phi(x)`, exact (Keras' `gelu`, whose activation default is `approximate=False`).
    Gelu,
    /// `x * sigmoid(x)` (Keras' `silu`; `"swish"` is read as it).
    Silu,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: [Activation; 10] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax,
        Activation::Softplus,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Gelu,
        Activation::Silu,
    ];

    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::Linear => x.clone(),
            Activation::Relu => x.relu()?,
            Activation::Tanh => x.tanh()?,
            Activation::Sigmoid => x.sigmoid()?,
            Activation::Softmax => x.softmax()?,
            Activation::Softplus => x.softplus()?,
            Activation::LeakyRelu => x.leaky_relu(0.2)?,
            Activation::Elu => x.elu(1.0)?,
            Activation::Gelu => x.gelu(false)?,
            Activation::Silu => x.silu()?,
        })
    }

    /// Keras' name for it.
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::Softmax => "softmax",
            Activation::Softplus => "softplus",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    /// Keras' name of an activation ([`Activation::keras_name`]), or one of its aliases:
    /// `"none"` for `"linear"`, `"swish"` for `"silu"`.
    fn from_str(s: &str) -> Result<Self> {
        let name = match s {
            "none" => "linear",
            "swish" => "silu",
            other => other,
        };
        Activation::ALL
            .into_iter()
            .find(|a| a.keras_name() == name)
            .ok_or_else(|| Error::Build(format!("unknown activation '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_activation_parses_from_its_keras_name() {
        for a in Activation::ALL {
            assert_eq!(a.keras_name().parse::<Activation>().unwrap(), a);
        }
        assert_eq!("none".parse::<Activation>().unwrap(), Activation::Linear);
        assert!("mish".parse::<Activation>().is_err());
    }
}
