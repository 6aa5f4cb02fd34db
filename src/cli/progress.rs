//! Progress bars for long transfers (shown only on a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// Whether to show progress: not asked to be quiet, and both standard
/// output (a script reads it when it is not a terminal) and standard error
/// (where the bar is drawn) are terminals.
pub fn wanted(quiet: bool) -> bool {
    use std::io::IsTerminal;
    !quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// A spinner with a message and the elapsed time, for a step the daemon
/// does not report progress of; it ticks by itself until finished.
pub fn spinner(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    // invariant: the template is valid.
    let style =
        ProgressStyle::with_template("{msg} {spinner} {elapsed}").expect("valid progress template");
    bar.set_style(style);
    bar.set_message(label.to_string());
    // Drawn at once, however quick the step.
    bar.tick();
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

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

/// Show a Docker JSON message stream (pull, push) as it arrives: one line
/// per layer status, with a bar for transfers when on a terminal. Returns
/// the messages; an `error` message becomes the error.
pub async fn json_stream(
    resp: hyper::Response<hyper::body::Incoming>,
    quiet: bool,
) -> anyhow::Result<Vec<crate::types::api::JsonMessage>> {
    use http_body_util::BodyExt;
    use std::collections::HashMap;
    use std::io::IsTerminal;

    let tty = !quiet && std::io::stdout().is_terminal();
    let multi = indicatif::MultiProgress::new();
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let mut last: HashMap<String, String> = HashMap::new();
    let mut all = Vec::new();
    let mut buf = Vec::new();
    let mut body = resp.into_body();
    let mut show = |m: &crate::types::api::JsonMessage| -> anyhow::Result<()> {
        if let Some(e) = &m.error {
            anyhow::bail!("Error response from daemon: {e}");
        }
        if quiet {
            return Ok(());
        }
        if let Some(s) = &m.stream {
            print!("{s}");
        }
        let (Some(status), Some(id)) = (&m.status, &m.id) else {
            if let Some(s) = &m.status {
                println!("{s}");
            }
            return Ok(());
        };
        if tty {
            let bar = bars.entry(id.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(0));
                // invariant: the template is valid.
                b.set_style(
                    ProgressStyle::with_template("{prefix}: {msg} {bar:30} {bytes}/{total_bytes}")
                        .expect("valid progress template")
                        .progress_chars("=> "),
                );
                b.set_prefix(id.clone());
                b
            });
            if let Some(p) = &m.progress_detail {
                bar.set_length(p.total);
                bar.set_position(p.current);
            }
            bar.set_message(status.clone());
        } else if last.get(id) != Some(status) {
            println!("{id}: {status}");
            last.insert(id.clone(), status.clone());
        }
        Ok(())
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow::anyhow!("the daemon's answer was cut: {e}"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if line.trim_ascii().is_empty() {
                continue;
            }
            let m: crate::types::api::JsonMessage = serde_json::from_slice(line.trim_ascii())?;
            let shown = show(&m);
            all.push(m);
            if let Err(e) = shown {
                for b in bars.values() {
                    b.abandon();
                }
                return Err(e);
            }
        }
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(all)
}
