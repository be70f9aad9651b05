//! A strided view of a row-major matrix: the operand type of every matrix product here.

/// A row-major matrix operand: base slice plus element strides (row, column).
#[derive(Clone, Copy, Debug)]
pub struct MatrixRef<'a> {
    /// The elements; must cover every offset the strides reach.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> MatrixRef<'a> {
    /// A contiguous `[rows, cols]` matrix.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        MatrixRef { data, row_stride: cols, col_stride: 1 }
    }
    /// The transpose of a contiguous `[cols, rows]` matrix, i.e. a `[rows, cols]` view of it.
    pub fn transposed(data: &'a [f32], rows: usize) -> Self {
        MatrixRef { data, row_stride: 1, col_stride: rows }
    }
    /// Whether element `(rows - 1, cols - 1)` lies inside `data`.
    pub(crate) fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}
