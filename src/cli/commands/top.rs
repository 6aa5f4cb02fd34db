//! `amber top` / `amber container top`.

use serde_json::Value;

use crate::cli::client::{enc, enc_path, Client};
use crate::cli::output::print_table;

/// Display the running processes of a container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
    /// Options for ps.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let mut path = format!("/containers/{}/top", enc_path(&args.container));
    if !args.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", enc(&args.ps_args.join(" "))));
    }
    let v: Value = c.get(&path).await?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let titles = strings(&v["Titles"]);
    let rows: Vec<Vec<String>> = v["Processes"]
        .as_array()
        .map(|a| a.iter().map(strings).collect())
        .unwrap_or_default();
    let header: Vec<&str> = titles.iter().map(String::as_str).collect();
    print_table(&header, &rows);
    Ok(0)
}
