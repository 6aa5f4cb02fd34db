//! `amber info`.

use serde_json::Value;

use crate::cli::client::Client;
use crate::cli::output::Format;

/// Show system-wide information.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: json or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let info: Value = c.get("/info").await?;
    match Format::parse(args.format.as_deref())? {
        Format::Json => println!("{info}"),
        Format::Template(t) => println!("{}", Format::render(&t, &info)?),
        Format::Default => {
            let f = |k: &str| match &info[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                v => v.to_string(),
            };
            println!("Server:");
            for (label, key) in [
                ("Containers", "Containers"),
                ("Images", "Images"),
                ("Server Version", "ServerVersion"),
                ("Storage Driver", "Driver"),
                ("Logging Driver", "LoggingDriver"),
                ("Cgroup Driver", "CgroupDriver"),
                ("Cgroup Version", "CgroupVersion"),
                ("Kernel Version", "KernelVersion"),
                ("Operating System", "OperatingSystem"),
                ("Architecture", "Architecture"),
                ("CPUs", "NCPU"),
                ("Total Memory", "MemTotal"),
                ("Name", "Name"),
                ("Data Root", "DockerRootDir"),
            ] {
                println!(" {label}: {}", f(key));
            }
        }
    }
    Ok(0)
}
