//! [`Array`]: host-side data, the role NumPy arrays play in Keras. Datasets return arrays;
//! `fit`, `evaluate` and `predict` take them and move batches to the model's device.

use tensor::{Device, Shape, Tensor};

use crate::error::{Error, Result};

/// An n-dimensional, row-major f32 array in host memory.
#[derive(Clone, PartialEq)]
pub struct Array {
    shape: Shape,
    data: Vec<f32>,
}

impl Array {
    /// An array from row-major data; fails if the data length does not match the shape.
    pub fn new(data: Vec<f32>, shape: impl Into<Shape>) -> Result<Array> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::Data(format!(
                "array of shape {shape} needs {} values, got {}",
                shape.numel(),
                data.len()
            )));
        }
        Ok(Array { shape, data })
    }

    /// An array of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Array {
        let shape = shape.into();
        Array { data: vec![0.0; shape.numel()], shape }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }
    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }
    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Takes the values out.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Number of samples: the first dimension (1 for a scalar).
    pub fn len(&self) -> usize {
        self.shape.dims().first().copied().unwrap_or(1)
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Values per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.dims().iter().skip(1).product()
    }

    /// The same values with another shape of the same size.
    pub fn reshape(self, shape: impl Into<Shape>) -> Result<Array> {
        Array::new(self.data, shape)
    }

    /// Applies `f` to every value (e.g. `x.map(|v| v / 255.0)`).
    pub fn map(mut self, f: impl Fn(f32) -> f32) -> Array {
        self.data.iter_mut().for_each(|v| *v = f(*v));
        self
    }

    /// Samples `start..end` (along the first dimension).
    pub fn slice(&self, start: usize, end: usize) -> Array {
        let n = self.sample_len();
        let mut dims = self.dims().to_vec();
        dims[0] = end - start;
        Array { data: self.data[start * n..end * n].to_vec(), shape: dims.into() }
    }

    /// The samples at `indices`, in that order.
    pub fn gather(&self, indices: &[usize]) -> Array {
        let n = self.sample_len();
        let mut data = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            data.extend_from_slice(&self.data[i * n..(i + 1) * n]);
        }
        let mut dims = self.dims().to_vec();
        dims[0] = indices.len();
        Array { data, shape: dims.into() }
    }

    /// Copies the array to `device` as a constant tensor.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, self.shape.clone(), device)?)
    }

    /// Copies a tensor back to the host.
    pub fn from_tensor(t: &Tensor) -> Result<Array> {
        Ok(Array { data: t.to_vec()?, shape: t.shape().clone() })
    }
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Array{}", self.shape)
    }
}

/// One-hot encodes integer class labels: `[n]` (values `0..num_classes`) to `[n, num_classes]`,
/// as Keras' `to_categorical`.
pub fn to_categorical(labels: &Array, num_classes: usize) -> Result<Array> {
    let mut data = vec![0.0; labels.data().len() * num_classes];
    for (i, &label) in labels.data().iter().enumerate() {
        if label < 0.0 || label.fract() != 0.0 || label as usize >= num_classes {
            return Err(Error::Data(format!(
                "label {label} at index {i} is not a class index in 0..{num_classes}"
            )));
        }
        data[i * num_classes + label as usize] = 1.0;
    }
    Array::new(data, [labels.data().len(), num_classes])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_categorical_one_hot() {
        let y = Array::new(vec![2.0, 0.0, 1.0], [3]).unwrap();
        let c = to_categorical(&y, 3).unwrap();
        assert_eq!(c.dims(), &[3, 3]);
        assert_eq!(c.data(), &[0., 0., 1., 1., 0., 0., 0., 1., 0.]);
        assert!(to_categorical(&y, 2).is_err());
        assert!(to_categorical(&Array::new(vec![0.5], [1]).unwrap(), 2).is_err());
    }

    #[test]
    fn gather_and_slice_take_whole_samples() {
        let x = Array::new((0..12).map(|v| v as f32).collect(), [3, 2, 2]).unwrap();
        assert_eq!(x.gather(&[2, 0]).data(), &[8., 9., 10., 11., 0., 1., 2., 3.]);
        assert_eq!(x.slice(1, 2).dims(), &[1, 2, 2]);
        assert_eq!(x.slice(1, 2).data(), &[4., 5., 6., 7.]);
        assert!(Array::new(vec![1.0; 5], [2, 3]).is_err());
    }
}
