//! `ADD http://...`: a small HTTP/1.0 client (one GET, redirects followed,
//! the body read to the end of the connection), and the archive formats ADD
//! unpacks from local sources.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::BuildError;

/// Redirects followed before giving up (Go's http client stops at 10).
const MAX_REDIRECTS: usize = 10;
/// Connect and read timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A downloaded file.
pub struct Download {
    /// The body.
    pub data: Vec<u8>,
    /// The file name from the URL's last path component.
    pub name: String,
}

/// GET `url` (http only) and return its body.
pub fn download(url: &str) -> Result<Download, BuildError> {
    let mut url = url.to_string();
    for _ in 0..MAX_REDIRECTS {
        let (host, port, path) = split_url(&url)?;
        let fail = |why: String| BuildError::Fetch(format!("failed to download {url}: {why}"));
        let addr = format!("{host}:{port}");
        let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| fail(e.to_string()))?
            .next()
            .ok_or_else(|| fail("no address".into()))?;
        let mut s = TcpStream::connect_timeout(&sock, TIMEOUT).map_err(|e| fail(e.to_string()))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| fail(e.to_string()))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: amber\r\n\r\n");
        s.write_all(request.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| fail(e.to_string()))?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| fail(format!("bad status line {:?}", status.trim())))?;
        let mut location = None;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(|e| fail(e.to_string()))? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("location") {
                    location = Some(v.trim().to_string());
                }
            }
        }
        if (300..400).contains(&code) {
            let loc =
                location.ok_or_else(|| fail(format!("redirect {code} without a Location")))?;
            url = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc
            } else {
                format!("http://{host}:{port}{loc}")
            };
            continue;
        }
        if code != 200 {
            return Err(fail(format!("server answered {}", status.trim())));
        }
        let mut data = Vec::new();
        r.read_to_end(&mut data).map_err(|e| fail(e.to_string()))?;
        let name = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        return Ok(Download { data, name });
    }
    Err(BuildError::Fetch(format!(
        "failed to download {url}: too many redirects"
    )))
}

/// Whether a source is a URL.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn split_url(url: &str) -> Result<(String, u16, String), BuildError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        BuildError::Fetch(format!(
            "cannot download {url}: only http:// URLs are supported"
        ))
    })?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => (
            h,
            p.parse()
                .map_err(|_| BuildError::Fetch(format!("bad port in {url}")))?,
        ),
        _ => (hostport, 80),
    };
    Ok((
        host.trim_matches(['[', ']']).to_string(),
        port,
        path.to_string(),
    ))
}

/// Compression of a local ADD source, by magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Not compressed.
    Plain,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
    /// xz.
    Xz,
    /// bzip2.
    Bzip2,
}

/// The compression of a file's first bytes.
pub fn packing(head: &[u8]) -> Packing {
    if head.starts_with(&[0x1f, 0x8b]) {
        Packing::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Packing::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Packing::Xz
    } else if head.starts_with(b"BZh") {
        Packing::Bzip2
    } else {
        Packing::Plain
    }
}

/// Whether decompressed data starts like a tar archive (`ustar` magic at
/// offset 257, or an old-style header with a valid checksum).
pub fn looks_like_tar(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    stored == Some(sum) && block[0] != 0
}

/// A decompressing reader over `path`: gzip and zstd in process, xz and
/// bzip2 through the system's `xz -dc` / `bzip2 -dc`.
pub fn open_decompressed(
    path: &std::path::Path,
    kind: Packing,
) -> Result<Box<dyn Read + Send>, BuildError> {
    let fail =
        |e: std::io::Error| BuildError::Context(format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(fail)?;
    Ok(match kind {
        Packing::Plain => Box::new(f),
        Packing::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Packing::Zstd => Box::new(zstd::stream::read::Decoder::new(f).map_err(fail)?),
        Packing::Xz | Packing::Bzip2 => {
            let tool = if kind == Packing::Xz { "xz" } else { "bzip2" };
            let child = std::process::Command::new(tool)
                .arg("-dc")
                .stdin(f)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| {
                    BuildError::Context(format!(
                        "cannot decompress {}: {tool} is needed: {e}",
                        path.display()
                    ))
                })?;
            Box::new(ChildReader(child))
        }
    })
}

/// Reads a child's stdout; reaps it at the end.
struct ChildReader(std::process::Child);

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let out = self
            .0
            .stdout
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let n = out.read(buf)?;
        if n == 0 {
            let st = self.0.wait()?;
            if !st.success() {
                return Err(std::io::Error::other(format!("decompressor failed: {st}")));
            }
        }
        Ok(n)
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/a/b.txt?x=1").unwrap(),
            ("127.0.0.1".into(), 8080, "/a/b.txt?x=1".into())
        );
        assert_eq!(split_url("http://h").unwrap(), ("h".into(), 80, "/".into()));
        assert!(split_url("https://h/x").is_err());
        assert!(split_url("http://h:x/").is_err());
    }

    #[test]
    fn magic() {
        assert_eq!(packing(&[0x1f, 0x8b, 8]), Packing::Gzip);
        assert_eq!(packing(b"\xfd7zXZ\0.."), Packing::Xz);
        assert_eq!(packing(b"hello"), Packing::Plain);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, "x", &b"x"[..]).unwrap();
        assert!(looks_like_tar(&b.into_inner().unwrap()));
        assert!(!looks_like_tar(&[b'a'; 600]));
    }
}
