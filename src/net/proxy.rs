//! The userland port proxy: bind a host address and port and forward each
//! TCP connection or UDP flow to the container's address. It runs in the
//! `amber proxy` process of each published port (`proxy_process`), so
//! `127.0.0.1:PORT` works (kernel DNAT alone does not give that without
//! `route_localnet`). Plain threads: accept loops block, and each
//! connection is two copies.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::NetError;

/// How long a connection to the container may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A UDP flow without traffic for this long is forgotten (Docker's proxy
/// uses 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);
/// How often blocking UDP reads look at the stop flag.
const UDP_TICK: Duration = Duration::from_millis(500);

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` / `udp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A running forward; stopped (and its port freed) on drop.
pub struct Forward {
    stop: Arc<AtomicBool>,
    fd: i32,
    thread: Option<JoinHandle<()>>,
    /// The bound host address (the port filled in when 0 was asked).
    pub host: SocketAddr,
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // SAFETY: shutdown on a socket fd the thread still owns; it wakes a
        // blocked accept (EINVAL) and changes nothing else.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind_error(host: SocketAddr, e: std::io::Error) -> NetError {
    if e.kind() == ErrorKind::AddrInUse {
        return NetError::PortInUse {
            addr: host.to_string(),
            source: e,
        };
    }
    NetError::Invalid(format!("Bind for {host} failed: {e}"))
}

/// Bind `host` and forward to `target`.
pub fn start(proto: Proto, host: SocketAddr, target: SocketAddr) -> Result<Forward, NetError> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    match proto {
        Proto::Tcp => {
            let l = TcpListener::bind(host).map_err(|e| bind_error(host, e))?;
            let bound = l.local_addr().map_err(|e| bind_error(host, e))?;
            let fd = l.as_raw_fd();
            let thread = std::thread::Builder::new()
                .name(format!("proxy-{bound}"))
                .spawn(move || accept_loop(l, target, flag))
                .map_err(|e| bind_error(host, e))?;
            Ok(Forward {
                stop,
                fd,
                thread: Some(thread),
                host: bound,
            })
        }
        Proto::Udp => {
            let s = UdpSocket::bind(host).map_err(|e| bind_error(host, e))?;
            let bound = s.local_addr().map_err(|e| bind_error(host, e))?;
            s.set_read_timeout(Some(UDP_TICK))
                .map_err(|e| bind_error(host, e))?;
            let fd = s.as_raw_fd();
            let thread = std::thread::Builder::new()
                .name(format!("proxy-udp-{bound}"))
                .spawn(move || udp_loop(s, target, flag))
                .map_err(|e| bind_error(host, e))?;
            Ok(Forward {
                stop,
                fd,
                thread: Some(thread),
                host: bound,
            })
        }
    }
}

fn accept_loop(l: TcpListener, target: SocketAddr, stop: Arc<AtomicBool>) {
    loop {
        let conn = l.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok((client, _)) => {
                let spawned = std::thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn(move || relay(client, target));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "port proxy: cannot start a connection thread");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!(error = %e, "port proxy: accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Copy both ways until both sides closed; half-closes are passed on.
fn relay(client: TcpStream, target: SocketAddr) {
    let upstream = match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, %target, "port proxy: container not reachable");
            return;
        }
    };
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .name("proxy-back".into())
        .spawn(move || copy_half(u2, c2));
    copy_half(client, upstream);
    if let Ok(t) = back {
        let _ = t.join();
    }
}

fn copy_half(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

struct Flow {
    upstream: Arc<UdpSocket>,
    last: Instant,
}

fn udp_loop(s: UdpSocket, target: SocketAddr, stop: Arc<AtomicBool>) {
    let s = Arc::new(s);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        flows.retain(|_, f| f.last.elapsed() < UDP_IDLE);
        let (n, from) = match s.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let flow = match flows.get_mut(&from) {
            Some(f) => f,
            None => match new_flow(&s, from, target, &stop) {
                Some(up) => flows.entry(from).or_insert(Flow {
                    upstream: up,
                    last: Instant::now(),
                }),
                None => continue,
            },
        };
        flow.last = Instant::now();
        let _ = flow.upstream.send(&buf[..n]);
    }
}

/// A socket connected to the container for one client, and a thread
/// sending its replies back.
fn new_flow(
    front: &Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddr,
    stop: &Arc<AtomicBool>,
) -> Option<Arc<UdpSocket>> {
    let any: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let up = UdpSocket::bind(any).ok()?;
    up.connect(target).ok()?;
    up.set_read_timeout(Some(UDP_TICK)).ok()?;
    let up = Arc::new(up);
    let (reader, front, stop) = (Arc::clone(&up), Arc::clone(front), Arc::clone(stop));
    std::thread::Builder::new()
        .name("proxy-udp-back".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut last = Instant::now();
            while !stop.load(Ordering::SeqCst) && last.elapsed() < UDP_IDLE {
                match reader.recv(&mut buf) {
                    Ok(n) => {
                        last = Instant::now();
                        let _ = front.send_to(&buf[..n], client);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        })
        .ok()?;
    Some(up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn tcp_forward_and_port_in_use() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = echo.accept().unwrap();
            let mut s = String::new();
            c.read_to_string(&mut s).unwrap();
            c.write_all(format!("got {s}").as_bytes()).unwrap();
        });
        let f = start(Proto::Tcp, "127.0.0.1:0".parse().unwrap(), target).unwrap();
        let mut c = TcpStream::connect(f.host).unwrap();
        c.write_all(b"hi").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "got hi");
        let e = start(Proto::Tcp, f.host, target).err().unwrap();
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        let host = f.host;
        drop(f);
        // Freed at once.
        drop(start(Proto::Tcp, host, target).unwrap());
    }

    #[test]
    fn udp_forward() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            let (n, from) = echo.recv_from(&mut b).unwrap();
            echo.send_to(&b[..n], from).unwrap();
        });
        let f = start(Proto::Udp, "127.0.0.1:0".parse().unwrap(), target).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"ping", f.host).unwrap();
        let mut b = [0u8; 64];
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[..n], b"ping");
    }
}
