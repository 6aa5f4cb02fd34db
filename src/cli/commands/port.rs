//! `amber port` / `amber container port`.

use serde_json::Value;

use crate::cli::client::{enc_path, Client};

/// List port mappings or a specific mapping for the container.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    pub container: String,
    /// Only this port (`80` or `80/tcp`).
    pub private_port: Option<String>,
}

/// Docker's lines, `80/tcp -> 0.0.0.0:8080`, from inspect's `NetworkSettings.Ports`.
pub fn lines(ports: &Value, only: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(map) = ports.as_object() else {
        return out;
    };
    for (key, bindings) in map {
        if let Some(o) = only {
            let o = if o.contains('/') {
                o.to_string()
            } else {
                format!("{o}/tcp")
            };
            if *key != o {
                continue;
            }
        }
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let port = b["HostPort"].as_str().unwrap_or("");
            let addr = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            out.push(if only.is_some() {
                addr
            } else {
                format!("{key} -> {addr}")
            });
        }
    }
    out
}

/// Run it.
pub async fn run(c: &Client, args: Args) -> anyhow::Result<i32> {
    let v: Value = c
        .get(&format!("/containers/{}/json", enc_path(&args.container)))
        .await?;
    let found = lines(&v["NetworkSettings"]["Ports"], args.private_port.as_deref());
    if found.is_empty() {
        if let Some(p) = &args.private_port {
            anyhow::bail!(
                "Error: No public port '{p}' published for {}",
                args.container
            );
        }
    }
    for l in found {
        println!("{l}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let p = serde_json::json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "::1", "HostPort": "5353"}],
            "90/tcp": null,
        });
        assert_eq!(
            lines(&p, None),
            ["53/udp -> [::1]:5353", "80/tcp -> 0.0.0.0:8080"]
        );
        assert_eq!(lines(&p, Some("80")), ["0.0.0.0:8080"]);
        assert!(lines(&p, Some("90")).is_empty());
    }
}
