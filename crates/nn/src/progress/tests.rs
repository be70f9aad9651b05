use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;

use super::*;
use crate::layers::Dense;
use crate::{Activation, Array, FitOptions, Loss, Metric, Sequential, Sgd};

/// A writer whose bytes a test reads back after `fit`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

const KERAS_LINE: &str = r"^\d+/\d+ - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}$";

/// Trains a small classifier for `epochs` epochs of 8 steps, printing to a captured writer;
/// returns what was printed and the history's final loss.
fn fit_captured(verbose: u8, is_tty: bool, epochs: usize) -> (String, f32) {
    let mut model = Sequential::new().seed(3);
    model.add(Dense::new(8).activation(Activation::Relu).input_shape([4])).unwrap();
    model.add(Dense::new(2).activation(Activation::Softmax)).unwrap();
    model.compile(Loss::CategoricalCrossentropy, Sgd::new(0.1), &[Metric::Accuracy]).unwrap();
    let x: Vec<f32> = (0..64 * 4).map(|i| ((i * 37 % 11) as f32) / 11.0).collect();
    let y: Vec<f32> = (0..64).flat_map(|i| if (i * 37 % 11) < 5 { [1.0, 0.0] } else { [0.0, 1.0] }).collect();
    let x = Array::new(x, [64, 4]).unwrap();
    let y = Array::new(y, [64, 2]).unwrap();
    let captured = Captured::default();
    let output = ProgressOutput::new(captured.clone(), is_tty).redraw_interval(Duration::ZERO);
    let options = FitOptions::new().epochs(epochs).batch_size(8).verbose(verbose).output(output);
    let history = model.fit(&x, &y, &options).unwrap();
    (captured.text(), *history.get("loss").unwrap().last().unwrap())
}

#[test]
fn epoch_line_has_keras_format() {
    let m = Logs::from([("loss".to_string(), 0.20104), ("accuracy".to_string(), 0.94862)]);
    assert_eq!(epoch_line(469, 3.2, &m), "469/469 - 3s - 7ms/step - accuracy: 0.9486 - loss: 0.2010");
    let v = Logs::from([
        ("val_loss".to_string(), 0.1),
        ("loss".to_string(), 0.2),
        ("val_accuracy".to_string(), 0.9),
    ]);
    assert_eq!(
        epoch_line(10, 0.004, &v),
        "10/10 - 0s - 400us/step - loss: 0.2000 - val_accuracy: 0.9000 - val_loss: 0.1000"
    );
    assert_eq!(epoch_line(3, 4.5, &Logs::new()), "3/3 - 4s - 2s/step");
    // Keras prints values of magnitude up to 1e-3 in scientific notation, Python style (0.001
    // as an f32 is a little above 1e-3).
    let small = Logs::from([("loss".to_string(), 0.000123456), ("learning_rate".to_string(), 0.001)]);
    assert_eq!(epoch_line(1, 1.0, &small), "1/1 - 1s - 1s/step - learning_rate: 0.0010 - loss: 1.2346e-04");
}

#[test]
fn bar_fills_in_proportion() {
    assert_eq!(bar(0, 8), "─".repeat(20));
    assert_eq!(bar(2, 8), "━".repeat(5) + &"─".repeat(15));
    assert_eq!(bar(8, 8), "━".repeat(20));
    assert_eq!(bar(0, 0), "━".repeat(20));
}

#[test]
fn verbose_2_prints_keras_lines() {
    let (text, loss) = fit_captured(2, true, 2);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    assert_eq!(lines[0], "Epoch 1/2");
    assert_eq!(lines[2], "Epoch 2/2");
    let keras = Regex::new(KERAS_LINE).unwrap();
    for line in [lines[1], lines[3]] {
        assert!(keras.is_match(line), "{line:?} is not Keras' verbose=2 line");
        assert!(line.starts_with("8/8 - "), "{line:?}");
    }
    assert!(lines[3].ends_with(&format!("loss: {loss:.4}")), "{:?} vs history loss {loss}", lines[3]);
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
}

#[test]
fn piped_verbose_1_has_no_control_codes() {
    let (text, _) = fit_captured(1, false, 2);
    assert!(!text.contains('\r'), "carriage return in piped output: {text:?}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "control code in piped output: {text:?}");
    let keras = Regex::new(KERAS_LINE).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    assert!(keras.is_match(lines[1]) && keras.is_match(lines[3]), "{text:?}");
}

#[test]
fn terminal_verbose_1_draws_a_live_bar_then_the_final_line() {
    let (text, loss) = fit_captured(1, true, 1);
    let (header, rest) = text.split_once('\n').unwrap();
    assert_eq!(header, "Epoch 1/1");
    assert!(rest.ends_with('\n') && rest.matches('\n').count() == 1, "one line per epoch: {rest:?}");
    let draws: Vec<&str> = rest.trim_end_matches('\n').split('\r').skip(1).map(str::trim_end).collect();
    // With no redraw interval, every step but the last redraws the bar; the last is the final line.
    assert_eq!(draws.len(), 8, "{rest:?}");
    let running = Regex::new(
        r"^(\d)/8 ━*─* \d+s \d+(ms|us|s)/step - ETA: \d+s - accuracy: \d\.\d{4} - loss: \d\.\d{4}$",
    )
    .unwrap();
    for (i, draw) in draws[..7].iter().enumerate() {
        let caps = running.captures(draw).unwrap_or_else(|| panic!("{draw:?} is not a running bar"));
        assert_eq!(caps[1].parse::<usize>().unwrap(), i + 1);
        let done = draw.matches('━').count();
        assert_eq!((done, draw.matches('─').count()), ((i + 1) * 20 / 8, 20 - (i + 1) * 20 / 8), "{draw:?}");
    }
    let last = draws[7];
    let final_line =
        Regex::new(r"^8/8 ━{20} \d+s \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}$").unwrap();
    assert!(final_line.is_match(last), "{last:?} is not the final line");
    assert!(last.ends_with(&format!("loss: {loss:.4}")), "{last:?} vs history loss {loss}");
}

#[test]
fn verbose_0_prints_nothing() {
    assert_eq!(fit_captured(0, true, 2).0, "");
}
