//! Keras' `model.summary()` table, as text (the rows come from `model/summary.rs`).

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

/// The table, with Keras' "Connected to" column for functional models when `connected` is
/// given (one list of `layer[node][tensor]` entries per row, each on its own line).
pub(crate) fn summary_table_connected(
    model: &str,
    rows: &[SummaryRow],
    connected: Option<&[Vec<String>]>,
    total: usize,
    non_trainable: usize,
) -> String {
    let w0 = rows.iter().map(|r| r.name.len() + 1).max().unwrap_or(0).max(29);
    let w1 = rows.iter().map(|r| batch_shape(&r.output_shape).len() + 1).max().unwrap_or(0).max(26);
    let w2 = if connected.is_some() {
        rows.iter().map(|r| thousands(r.params).len() + 1).max().unwrap_or(0).max(10)
    } else {
        0
    };
    let w3 = connected.map_or(0, |c| c.iter().flatten().map(String::len).max().unwrap_or(0).max(12));
    let width = if connected.is_some() { w0 + w1 + w2 + w3 } else { w0 + w1 + 10 };
    let (thin, thick) = ("_".repeat(width), "=".repeat(width));
    let mut s = format!("Model: \"{model}\"\n{thin}\n");
    if connected.is_some() {
        s += &format!(
            "{:<w0$}{:<w1$}{:<w2$}{}\n{thick}\n",
            "Layer (type)", "Output Shape", "Param #", "Connected to"
        );
    } else {
        s += &format!("{:<w0$}{:<w1$}{}\n{thick}\n", "Layer (type)", "Output Shape", "Param #");
    }
    for (i, r) in rows.iter().enumerate() {
        let (shape, params) = (batch_shape(&r.output_shape), thousands(r.params));
        match connected.map(|c| c[i].as_slice()) {
            None => s += &format!("{:<w0$}{:<w1$}{params}\n", r.name, shape),
            Some(links) => {
                let first = links.first().map_or("-", String::as_str);
                s += format!("{:<w0$}{:<w1$}{params:<w2$}{first}", r.name, shape).trim_end();
                s.push('\n');
                for link in links.iter().skip(1) {
                    s += &format!("{:w$}{link}\n", "", w = w0 + w1 + w2);
                }
            }
        }
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
