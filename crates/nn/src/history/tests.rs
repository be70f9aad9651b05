use std::collections::{BTreeMap, HashSet};

use super::*;

fn sample() -> History {
    let mut history = BTreeMap::new();
    history.insert("loss".to_string(), vec![0.512_345_7, 0.301_2, 0.250_001]);
    history.insert("accuracy".to_string(), vec![0.81, 0.912_5, 0.933_3]);
    history.insert("val_loss".to_string(), vec![0.4, 0.35, f32::NAN]);
    history.insert("val_accuracy".to_string(), vec![0.85, 0.9, 0.92]);
    History { history, epoch_seconds: vec![3.25, 3.125, 2.999_9] }
}

/// Equal bit for bit, NaN included.
fn assert_same(a: &History, b: &History) {
    assert_eq!(a.history.keys().collect::<Vec<_>>(), b.history.keys().collect::<Vec<_>>());
    for (k, v) in &a.history {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(v), bits(&b.history[k]), "{k}");
    }
    assert_eq!(a.epoch_seconds, b.epoch_seconds);
}

#[test]
fn json_round_trips_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.json");
    let history = sample();
    history.save_json(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["history"]["loss"][1].as_f64().unwrap() as f32, 0.301_2);
    assert!(value["history"]["val_loss"][2].is_null(), "NaN is written as null");
    assert_same(&History::from_json(&text).unwrap(), &history);
}

#[test]
fn csv_has_keras_columns_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.csv");
    let history = sample();
    history.save_csv(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "epoch,accuracy,loss,val_accuracy,val_loss,seconds");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    for (epoch, row) in rows.iter().enumerate() {
        assert_eq!(row[0], epoch.to_string());
        for (col, key) in ["accuracy", "loss", "val_accuracy", "val_loss"].iter().enumerate() {
            let read: f32 = row[col + 1].parse().unwrap();
            let want = history.history[*key][epoch];
            assert_eq!(read.to_bits(), want.to_bits(), "{key} epoch {epoch}: {read} vs {want}");
        }
        assert_eq!(row[5].parse::<f64>().unwrap(), history.epoch_seconds[epoch]);
    }
}

#[test]
fn bad_json_is_a_data_error() {
    assert!(
        matches!(History::from_json("{\"history\": {\"loss\": [\"x\"]}}"), Err(Error::Data(m)) if m.contains("loss"))
    );
    assert!(matches!(History::from_json("[]"), Err(Error::Data(_))));
}

/// Decodes a PNG into (width, height, RGB pixels).
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = buf[..info.buffer_size()].chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, pixels)
}

#[test]
fn plot_png_has_two_panels_of_curves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.png");
    sample().plot(&path).unwrap();
    let (width, height, pixels) = read_png(&path);
    assert_eq!((width, height), (1120, 420), "two 560x420 panels");
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(colours.len() > 8, "only {} colours: a blank plot?", colours.len());
    // Both curves' colours are drawn in each panel (left: loss, right: accuracy).
    for (name, colour) in [("training", [31, 119, 180]), ("validation", [255, 127, 14])] {
        for panel in 0..2 {
            let hits = pixels
                .iter()
                .enumerate()
                .filter(|(i, p)| (*i as u32 % width) / 560 == panel && **p == colour)
                .count();
            assert!(hits > 50, "{name} curve in panel {panel}: {hits} pixels");
        }
    }
    // Mostly white background, not a filled image.
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    assert!(white > pixels.len() / 2, "{white} white pixels of {}", pixels.len());
}

#[test]
fn plot_svg_names_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.svg");
    sample().plot(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
    for text in ["loss", "accuracy", "training", "validation", "epoch"] {
        assert!(
            svg.contains(&format!(">{text}<")) || svg.contains(&format!(">\n{text}\n<")),
            "no '{text}' label"
        );
    }
}

#[test]
fn plot_rejects_unknown_types_and_empty_histories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.bmp");
    let err = sample().plot(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Output { path: p, message } if p == &path && message.contains(".png")),
        "{err}"
    );
    let err = History::default().plot(dir.path().join("empty.png")).unwrap_err();
    assert!(err.to_string().contains("no epochs"), "{err}");
}
