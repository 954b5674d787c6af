//! A loopback TCP proxy for partition tests: `pause` stops forwarding bytes
//! (connections stay open, like a network that drops packets), `cut` closes
//! every connection and refuses new ones, `heal` forwards again. Std threads only.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

const OPEN: u8 = 0;
const PAUSED: u8 = 1;
const CUT: u8 = 2;

struct Shared {
    state: AtomicU8,
    /// Bumped by `cut`: connections of an older generation close.
    generation: AtomicU64,
    stop: AtomicBool,
}

/// A proxy from `addr()` to a target address.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TcpProxy {
    /// Starts a proxy on an ephemeral loopback port forwarding to `target`.
    pub fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: AtomicU8::new(OPEN),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if s.state.load(Ordering::SeqCst) == CUT {
                            drop(client);
                            continue;
                        }
                        let s = s.clone();
                        thread::spawn(move || connect(client, target, s));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(TcpProxy { addr, shared })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding; bytes wait (and time out at the peers) until `heal`.
    pub fn pause(&self) {
        self.shared.state.store(PAUSED, Ordering::SeqCst);
    }

    /// Closes every connection and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.shared.state.store(CUT, Ordering::SeqCst);
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn heal(&self) {
        self.shared.state.store(OPEN, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn connect(client: TcpStream, target: SocketAddr, s: Arc<Shared>) {
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
        return;
    };
    let generation = s.generation.load(Ordering::SeqCst);
    let (c2, s2) = match (client.try_clone(), server.try_clone()) {
        (Ok(c), Ok(v)) => (c, v),
        _ => return,
    };
    let sh = s.clone();
    thread::spawn(move || pump(c2, s2, sh, generation));
    pump(server, client, s, generation);
}

/// Copies `from` to `to` while the proxy is open and of the same generation.
fn pump(mut from: TcpStream, mut to: TcpStream, s: Arc<Shared>, generation: u64) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(20)));
    let mut buf = vec![0u8; 64 * 1024];
    let alive = |s: &Shared| {
        s.generation.load(Ordering::SeqCst) == generation && !s.stop.load(Ordering::SeqCst)
    };
    'outer: while alive(&s) {
        if s.state.load(Ordering::SeqCst) == PAUSED {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes read while open are held (not dropped) if a pause starts now.
                while s.state.load(Ordering::SeqCst) == PAUSED {
                    if !alive(&s) {
                        break 'outer;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                if !alive(&s) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
