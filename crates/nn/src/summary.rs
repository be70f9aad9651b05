//! Keras' `model.summary()` table.

/// One row of the table.
pub(crate) struct SummaryRow {
    /// `name (Class)`
    pub name: String,
    /// Per-sample output shape (the batch is shown as `None`).
    pub output_shape: Vec<usize>,
    /// Parameter count.
    pub params: usize,
}

/// `1234567` -> `"1,234,567"`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `(None, 24, 24, 20)`
pub fn batch_shape(dims: &[usize]) -> String {
    let mut parts = vec!["None".to_string()];
    parts.extend(dims.iter().map(usize::to_string));
    if parts.len() == 1 {
        "(None,)".into()
    } else {
        format!("({})", parts.join(", "))
    }
}

pub(crate) fn summary_table(model: &str, rows: &[SummaryRow], total: usize, non_trainable: usize) -> String {
    let w0 = rows.iter().map(|r| r.name.len() + 1).max().unwrap_or(0).max(29);
    let w1 = rows.iter().map(|r| batch_shape(&r.output_shape).len() + 1).max().unwrap_or(0).max(26);
    let width = w0 + w1 + 10;
    let (thin, thick) = ("_".repeat(width), "=".repeat(width));
    let mut s = format!("Model: \"{model}\"\n{thin}\n");
    s += &format!("{:<w0$}{:<w1$}{}\n{thick}\n", "Layer (type)", "Output Shape", "Param #");
    for (i, r) in rows.iter().enumerate() {
        s += &format!("{:<w0$}{:<w1$}{}\n", r.name, batch_shape(&r.output_shape), thousands(r.params));
        s += if i + 1 < rows.len() { &thin } else { &thick };
        s.push('\n');
    }
    s += &format!("Total params: {}\n", thousands(total));
    s += &format!("Trainable params: {}\n", thousands(total - non_trainable));
    s += &format!("Non-trainable params: {}\n{thin}\n", thousands(non_trainable));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(520), "520");
        assert_eq!(thousands(1010), "1,010");
        assert_eq!(thousands(289630), "289,630");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn shapes_show_none_for_the_batch() {
        assert_eq!(batch_shape(&[24, 24, 20]), "(None, 24, 24, 20)");
        assert_eq!(batch_shape(&[10]), "(None, 10)");
    }
}
