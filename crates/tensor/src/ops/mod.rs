//! Differentiable tensor operations. Each file holds an op family's forward (shape checks, then
//! one backend call) and its backward, side by side.

mod binary;
mod conv;
mod conv_pool;
mod image;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod softmax;
mod unary;
