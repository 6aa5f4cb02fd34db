//! Progress bars for long transfers (shown only on a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting bar: with a known total a bar and ETA, else a spinner
/// with the count and rate.
pub fn bytes_bar(label: &str, total: Option<u64>) -> ProgressBar {
    let (bar, template) = match total {
        Some(t) => (
            ProgressBar::new(t),
            "{msg} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
        ),
    };
    // invariant: the templates above are valid.
    let style = ProgressStyle::with_template(template)
        .expect("valid progress template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(label.to_string());
    bar
}
