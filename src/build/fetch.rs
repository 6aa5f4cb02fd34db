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
    /// `Last-Modified` (Unix seconds), which Docker gives the file.
    pub modified: Option<i64>,
}

/// GET `url` (http only) and return its body.
pub fn download(url: &str) -> Result<Download, BuildError> {
    let mut url = url.to_string();
    for _ in 0..MAX_REDIRECTS {
        let fail = |why: String| BuildError::Fetch(format!("failed to download {url}: {why}"));
        let (host, port, path) = split_url(&url)?;
        let (code, headers, mut r) =
            request(&host, port, &path).map_err(|e| fail(e.to_string()))?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if (300..400).contains(&code) {
            let loc = header("location")
                .ok_or_else(|| fail(format!("redirect {code} without a Location")))?;
            url = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc
            } else {
                format!("http://{host}:{port}{loc}")
            };
            continue;
        }
        if code != 200 {
            return Err(fail(format!("server answered {code}")));
        }
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = header("content-length").and_then(|v| v.parse::<u64>().ok());
        let data = read_body(&mut r, chunked, length).map_err(|e| fail(e.to_string()))?;
        let name = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let modified = header("last-modified")
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v).ok())
            .map(|t| t.timestamp());
        return Ok(Download {
            data,
            name,
            modified,
        });
    }
    Err(BuildError::Fetch(format!(
        "failed to download {url}: too many redirects"
    )))
}

type Headers = Vec<(String, String)>;

/// One `GET` over HTTP/1.0: status code, headers, and the body's reader.
fn request(
    host: &str,
    port: u16,
    path: &str,
) -> std::io::Result<(u16, Headers, BufReader<TcpStream>)> {
    let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
        .next()
        .ok_or_else(|| bad("no address".into()))?;
    let mut s = TcpStream::connect_timeout(&sock, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    // One write: a server may answer (and close) after the first segment.
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: amber\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {:?}", status.trim())))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((code, headers, r))
}

/// The body: chunked, of a Content-Length (a shorter one is an error), or
/// to the end of the connection.
fn read_body(r: &mut impl BufRead, chunked: bool, length: Option<u64>) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let hex = size.trim().split(';').next().unwrap_or("");
            let n = u64::from_str_radix(hex, 16).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad chunk size {hex:?}"),
                )
            })?;
            if n == 0 {
                return Ok(data);
            }
            let got = r.by_ref().take(n).read_to_end(&mut data)?;
            if (got as u64) < n {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    }
    r.read_to_end(&mut data)?;
    if length.is_some_and(|l| (data.len() as u64) < l) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "body ended after {} of {} bytes",
                data.len(),
                length.unwrap_or(0)
            ),
        ));
    }
    Ok(data)
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
    fn bodies() {
        let mut r = std::io::Cursor::new(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n".to_vec());
        assert_eq!(read_body(&mut r, true, None).unwrap(), b"Wikipedia");
        let mut r = std::io::Cursor::new(b"abc".to_vec());
        assert_eq!(read_body(&mut r, false, Some(3)).unwrap(), b"abc");
        let mut r = std::io::Cursor::new(b"abc".to_vec());
        assert!(read_body(&mut r, false, Some(10)).is_err());
        let mut r = std::io::Cursor::new(b"9\r\nshort".to_vec());
        assert!(read_body(&mut r, true, None).is_err());
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
