//! `amber cluster certs`: a CA, one server certificate per host and a
//! client certificate, laid out for `AMBER_CERT_PATH` and Docker's
//! `--tlscacert/--tlscert/--tlskey`.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The directory of the client's certificate (so no host may be named so).
const CLIENT_DIR: &str = "client";

/// Generate a CA and certificates for a set of hosts.
///
/// Writes DIR/ca.pem and DIR/ca-key.pem (keep it secret), DIR/NAME/{ca,cert,key}.pem
/// for each host (its server certificate names ADDR, NAME, localhost and 127.0.0.1),
/// and DIR/client/{ca,cert,key}.pem for clients. Any of these directories works as
/// AMBER_CERT_PATH (host certificates also serve as client certificates, so a host's
/// daemon can reach the others).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing CA (every certificate it signed stops being trusted).
    #[arg(long)]
    pub force: bool,
    /// Validity of the certificates, in days.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
    /// Hosts: NAME=ADDR (ADDR an IP address or DNS name, a port is ignored).
    #[arg(required = true, value_name = "NAME=ADDR")]
    pub hosts: Vec<String>,
}

/// One host to certify.
#[derive(Debug, PartialEq, Eq)]
struct Host {
    name: String,
    addr: String,
}

fn parse_host(s: &str) -> anyhow::Result<Host> {
    let Some((name, addr)) = s.split_once('=') else {
        bail!("invalid host {s:?}: expected NAME=ADDR");
    };
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !valid_name {
        bail!("invalid host name {name:?}: letters, digits, '-', '_', '.' (not first)");
    }
    if name == CLIENT_DIR {
        bail!("a host cannot be named {CLIENT_DIR:?}: that directory holds the client certificate");
    }
    // tcp://ADDR:PORT or [v6]:PORT → the address alone.
    let addr = addr.strip_prefix("tcp://").unwrap_or(addr);
    let addr = if let Some(rest) = addr.strip_prefix('[') {
        rest.split_once(']').map(|(a, _)| a).unwrap_or(rest)
    } else if addr.matches(':').count() == 1 {
        addr.split_once(':').map(|(a, _)| a).unwrap_or(addr)
    } else {
        addr
    };
    if addr.is_empty() || addr.contains(['/', ' ', '@']) {
        bail!("invalid address in {s:?}: expected an IP address or a DNS name");
    }
    Ok(Host {
        name: name.to_string(),
        addr: addr.to_string(),
    })
}

fn san(s: &str) -> anyhow::Result<SanType> {
    Ok(match s.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            s.to_string()
                .try_into()
                .map_err(|e| anyhow::anyhow!("invalid DNS name {s:?}: {e}"))?,
        ),
    })
}

/// Validity: from yesterday (clock skew between hosts) for `days`.
fn validity(params: &mut CertificateParams, days: u32) {
    use chrono::Datelike;
    let ymd = |t: chrono::DateTime<chrono::Utc>| {
        rcgen::date_time_ymd(t.year(), t.month() as u8, t.day() as u8)
    };
    let now = chrono::Utc::now();
    params.not_before = ymd(now - chrono::Duration::days(1));
    params.not_after = ymd(now + chrono::Duration::days(i64::from(days)));
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "amber");
    dn.push(DnType::CommonName, cn);
    dn
}

/// Write `data` to `path` with `mode`, replacing it.
fn write(path: &Path, data: &str, mode: u32) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(data.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Issue a leaf certificate and write DIR/{ca,cert,key}.pem.
fn leaf(
    dir: &Path,
    ca_pem: &str,
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    sans: &[String],
    ekus: &[ExtendedKeyUsagePurpose],
    days: u32,
) -> anyhow::Result<()> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect::<anyhow::Result<_>>()?;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = ekus.to_vec();
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate().context("failed to generate a key")?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("failed to sign the certificate of {cn}"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write(&dir.join("ca.pem"), ca_pem, 0o644)?;
    write(&dir.join("cert.pem"), &cert.pem(), 0o644)?;
    write(&dir.join("key.pem"), &key.serialize_pem(), 0o600)?;
    Ok(())
}

/// Run `amber cluster certs`.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let hosts = args
        .hosts
        .iter()
        .map(|h| parse_host(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].iter().any(|o| o.name == h.name) {
            bail!("host {} is given twice", h.name);
        }
    }
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    let out = &args.out;
    let ca_path = out.join("ca.pem");
    if (ca_path.exists() || out.join("ca-key.pem").exists()) && !args.force {
        bail!(
            "{} already holds a CA: refusing to replace it (every certificate it signed would stop being trusted); use --force to replace it, or another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let ca_key = KeyPair::generate().context("failed to generate the CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn("amber cluster CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params, args.days);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("failed to sign the CA certificate")?;
    let ca_pem = ca_cert.pem();
    write(&out.join("ca-key.pem"), &ca_key.serialize_pem(), 0o600)?;
    write(&ca_path, &ca_pem, 0o644)?;
    let issuer = Issuer::new(ca_params, ca_key);

    for h in &hosts {
        let mut sans = vec![h.addr.clone()];
        for extra in [h.name.as_str(), "localhost", "127.0.0.1"] {
            if !sans.iter().any(|s| s == extra) && san(extra).is_ok() {
                sans.push(extra.to_string());
            }
        }
        // Server and client: a host's daemon also reaches the others.
        leaf(
            &out.join(&h.name),
            &ca_pem,
            &issuer,
            &h.name,
            &sans,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            args.days,
        )?;
        println!("{}: {}", h.name, out.join(&h.name).display());
    }
    leaf(
        &out.join(CLIENT_DIR),
        &ca_pem,
        &issuer,
        "amber client",
        &[],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        args.days,
    )?;
    println!("{CLIENT_DIR}: {}", out.join(CLIENT_DIR).display());
    println!(
        "CA: {} (key {})",
        ca_path.display(),
        out.join("ca-key.pem").display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_arguments() {
        let h = parse_host("n1=10.0.0.5:2376").unwrap();
        assert_eq!((h.name.as_str(), h.addr.as_str()), ("n1", "10.0.0.5"));
        assert_eq!(parse_host("a=tcp://h.example:1").unwrap().addr, "h.example");
        assert_eq!(parse_host("a=[fd00::1]:1").unwrap().addr, "fd00::1");
        assert_eq!(parse_host("a=fd00::1").unwrap().addr, "fd00::1");
        assert!(parse_host("client=1.2.3.4").is_err());
        assert!(parse_host("../x=1.2.3.4").is_err());
        assert!(parse_host("x").is_err());
        assert!(parse_host("x=").is_err());
    }

    #[test]
    fn writes_the_layout_and_refuses_to_replace_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let args = |force| Args {
            out: out.clone(),
            force,
            days: 30,
            hosts: vec!["h1=10.1.2.3".into(), "h2=node2.test".into()],
        };
        run(args(false)).unwrap();
        for f in [
            "ca.pem",
            "ca-key.pem",
            "h1/cert.pem",
            "h2/key.pem",
            "client/ca.pem",
        ] {
            assert!(out.join(f).is_file(), "{f}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(out.join("ca.pem")).unwrap();
        assert!(run(args(false)).is_err());
        assert_eq!(std::fs::read(out.join("ca.pem")).unwrap(), first);
        run(args(true)).unwrap();
        assert_ne!(std::fs::read(out.join("ca.pem")).unwrap(), first);
    }
}
