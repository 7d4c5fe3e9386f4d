//! The network waits of prerequisites, readiness checks and `doctor`: name resolution,
//! connecting, and an HTTP/1.1 GET read to its end. Every one of them is bound by one
//! deadline for the whole exchange (a peer that accepts and then sends a byte every few
//! hundred milliseconds does not stretch it), and ends within [`SLICE`] of Ctrl-C.
//!
//! On Linux it also reads which sockets listen on which addresses (`/proc/net/tcp*`), so
//! that a service's readiness check can tell its own server from one that was already
//! listening there.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::process;

/// The longest a network wait blocks between looks at its deadline and at Ctrl-C.
pub const SLICE: Duration = Duration::from_millis(100);
/// The most of an HTTP answer that is read: enough for any health check's headers and
/// body; a longer one is taken as complete.
const HTTP_MAX: usize = 1 << 20;

/// Why a wait ended without an answer.
fn gave_up(deadline: Instant, budget: Duration) -> Option<String> {
    if process::interrupted() {
        Some("interrupted (Ctrl-C, SIGTERM or SIGHUP)".into())
    } else if Instant::now() >= deadline {
        Some(format!("no complete answer within {}", ms(budget)))
    } else {
        None
    }
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The addresses `address` (`host:port`) resolves to, by `deadline`. The system resolver
/// cannot be cancelled: it runs on a thread of its own, left to finish alone if the
/// deadline or Ctrl-C comes first.
fn resolve(address: &str, deadline: Instant, budget: Duration) -> Result<Vec<SocketAddr>, String> {
    // A literal address needs no resolver.
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = address.to_string();
    std::thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let _ = tx.send(owned.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(|err| format!("cannot resolve {address}: {err}"))?;
    loop {
        match rx.recv_timeout(SLICE) {
            Ok(Ok(addrs)) => return Ok(addrs),
            Ok(Err(err)) => return Err(format!("cannot resolve {address}: {err}")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(why) = gave_up(deadline, budget) {
                    return Err(format!("resolving {address}: {why}"));
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!("cannot resolve {address}"))
            }
        }
    }
}

/// A connection to `address` (`host:port`), made by `deadline`.
fn connect(address: &str, deadline: Instant, budget: Duration) -> Result<TcpStream, String> {
    let addresses = resolve(address, deadline, budget)?;
    let mut last = format!("{address} resolves to no address");
    for addr in addresses {
        loop {
            if let Some(why) = gave_up(deadline, budget) {
                return Err(format!("{address}: {why}"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match TcpStream::connect_timeout(&addr, left.min(SLICE).max(Duration::from_millis(1))) {
                Ok(stream) => return Ok(stream),
                // Not refused, not yet answered: try again while there is time.
                Err(err) if err.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(err) => {
                    last = format!("{address}: {err}");
                    break;
                }
            }
        }
    }
    Err(last)
}

/// Whether `host:port` accepts a connection within `timeout`; the address that did.
pub fn tcp(address: &str, timeout: Duration) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + timeout;
    let stream = connect(address, deadline, timeout)?;
    stream
        .peer_addr()
        .map_err(|err| format!("{address}: {err}"))
}

/// A URL as the checks use it, `scheme://[user-info@]host[:port][/path][?query][#fragment]`,
/// split by the one URL parser of the crate: the authority ends at the first `/`, `?` or
/// `#`, and its user-info runs to its last `@` (so `http://a@b@host/` is `host`, as a
/// browser reads it). No percent-decoding, no IDNA: the checks only connect to the host
/// and send the path as written. (`crate::redact` finds user-info in free text by the same
/// rule, as a search rather than a parse.)
///
/// Not the `url` crate, as uv uses: its lightest build (`idna_adapter` pinned to the stub)
/// costs about 7% more CPU on a cold build already at its budget; docs/design.md has the
/// measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Url<'a> {
    pub scheme: &'a str,
    pub userinfo: Option<&'a str>,
    /// `host` or `host:port` (`[::1]:8080` for IPv6).
    pub host: &'a str,
    /// Everything after the authority (path, query, fragment), possibly empty.
    pub rest: &'a str,
}

impl<'a> Url<'a> {
    /// `None` when `text` has no `scheme://`.
    pub fn parse(text: &'a str) -> Option<Url<'a>> {
        let (scheme, after) = text.split_once("://")?;
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return None;
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        Some(Url {
            scheme,
            userinfo,
            host,
            rest,
        })
    }

    /// The URL without its user-info: what may be shown.
    pub fn shown(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.rest)
    }

    /// `host:port` to connect to, `default_port` when the URL gives none.
    pub fn address(&self, default_port: u16) -> String {
        let has_port = self
            .host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !self.host.ends_with(']');
        if has_port {
            self.host.to_string()
        } else {
            format!("{}:{default_port}", self.host)
        }
    }

    /// What an HTTP request asks for: the path and query, `/` when there is none; the
    /// fragment is never sent.
    pub fn target(&self) -> &'a str {
        let target = self.rest.split('#').next().unwrap_or("");
        if target.is_empty() {
            "/"
        } else {
            target
        }
    }
}

/// `http://user:secret@host/x` → `http://host/x`; text that is no URL is left as it is.
pub fn without_userinfo(url: &str) -> String {
    Url::parse(url).map_or_else(|| url.to_string(), |u| u.shown())
}

/// GETs an `http://` URL (HTTP/1.1, no TLS) and reads the answer to its end (its headers,
/// and its body by `Content-Length` or to the end of the connection), all within
/// `timeout`: its status (an error unless 2xx) and the address that answered.
pub fn http(url: &str, timeout: Duration) -> Result<(u16, SocketAddr), String> {
    let deadline = Instant::now() + timeout;
    let shown = without_userinfo(url);
    let parsed = Url::parse(url)
        .filter(|u| u.scheme == "http")
        .ok_or_else(|| format!("{shown}: only http:// URLs can be checked"))?;
    let (host, path, address) = (parsed.host, parsed.target(), parsed.address(80));
    let mut stream =
        connect(&address, deadline, timeout).map_err(|err| format!("{shown}: {err}"))?;
    let peer = stream
        .peer_addr()
        .map_err(|err| format!("{shown}: {err}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: cargo-xtask\r\n\r\n"
    );
    let _ = stream.set_write_timeout(Some(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    ));
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("{shown}: sending the request: {err}"))?;
    let answer =
        read_answer(&mut stream, deadline, timeout).map_err(|why| format!("{shown}: {why}"))?;
    let _ = stream.shutdown(Shutdown::Both);
    let text = String::from_utf8_lossy(&answer);
    let line = text.lines().next().unwrap_or("");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or_else(|| format!("{shown}: not an HTTP answer: {:?}", truncate(line, 80)))?;
    if (200..300).contains(&status) {
        Ok((status, peer))
    } else {
        Err(format!("{shown} answered {status}"))
    }
}

/// An HTTP answer, read until its headers and `Content-Length` bytes of body (or the end
/// of the connection) have come, by `deadline`.
fn read_answer(
    stream: &mut TcpStream,
    deadline: Instant,
    budget: Duration,
) -> Result<Vec<u8>, String> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(want) = complete_at(&answer) {
            if answer.len() >= want {
                return Ok(answer);
            }
        }
        if answer.len() >= HTTP_MAX {
            return Ok(answer);
        }
        if let Some(why) = gave_up(deadline, budget) {
            return Err(why);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = stream.set_read_timeout(Some(left.min(SLICE).max(Duration::from_millis(1))));
        match stream.read(&mut buf) {
            Ok(0) if answer.is_empty() => {
                return Err("the connection closed without an answer".into())
            }
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// How long the whole answer is, once its headers are in: headers plus `Content-Length`;
/// `None` while the headers are incomplete, or when the length comes from the connection's
/// end.
fn complete_at(answer: &[u8]) -> Option<usize> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let headers = String::from_utf8_lossy(&answer[..end]);
    let length = headers.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    match length {
        Some(length) => Some(end.saturating_add(length)),
        // No body to wait for: a status without one.
        None if headers.starts_with("HTTP/1.1 204") || headers.starts_with("HTTP/1.1 304") => {
            Some(end)
        }
        None => None,
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The TCP sockets listening on this machine, with their inodes (Linux: `/proc/net/tcp`
/// and `tcp6`; empty elsewhere or when they cannot be read).
pub fn listeners() -> Vec<(SocketAddr, u64)> {
    let mut found = Vec::new();
    #[cfg(target_os = "linux")]
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ... uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            let (Some(addr), Ok(inode)) = (proc_address(fields[1], v6), fields[9].parse()) else {
                continue;
            };
            found.push((addr, inode));
        }
    }
    found
}

/// `0100007F:1F90` (v4) or 32 hex digits and a port (v6), as the kernel prints them: each
/// 32-bit word of the address in host byte order.
fn proc_address(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = ip
        .as_bytes()
        .chunks(8)
        .map(|w| {
            let w = std::str::from_utf8(w).ok()?;
            u32::from_str_radix(w, 16).ok().map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip = match (v6, bytes.len()) {
        (false, 4) => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        (true, 16) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether a socket listening on `listener` takes connections made to `peer`: the same
/// port, on the same address or on every address (v4-mapped v6 included).
pub fn accepts(listener: &SocketAddr, peer: &SocketAddr) -> bool {
    if listener.port() != peer.port() {
        return false;
    }
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let (l, p) = (canonical(listener.ip()), canonical(peer.ip()));
    l.is_unspecified() || l == p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(
            without_userinfo("http://u:secret@host:81/x?y"),
            "http://host:81/x?y"
        );
        assert_eq!(without_userinfo("http://host/a@b"), "http://host/a@b");
        assert_eq!(
            without_userinfo("http://a@b@host?q=c@d"),
            "http://host?q=c@d"
        );
        assert_eq!(without_userinfo("tcp"), "tcp");
        assert_eq!(without_userinfo("not a url://x@y"), "not a url://x@y");
    }

    #[test]
    fn urls_split_into_host_address_and_target() {
        let url = Url::parse("http://u:p@127.0.0.1:8080/health?deep=1#top").unwrap();
        assert_eq!(
            (url.scheme, url.userinfo, url.host),
            ("http", Some("u:p"), "127.0.0.1:8080")
        );
        assert_eq!(url.address(80), "127.0.0.1:8080");
        assert_eq!(url.target(), "/health?deep=1");
        let bare = Url::parse("http://localhost").unwrap();
        assert_eq!(
            (bare.address(80).as_str(), bare.target()),
            ("localhost:80", "/")
        );
        let v6 = Url::parse("http://[::1]#x").unwrap();
        assert_eq!((v6.address(80).as_str(), v6.target()), ("[::1]:80", "/"));
        assert_eq!(
            Url::parse("http://[::1]:81?a").unwrap().address(80),
            "[::1]:81"
        );
        assert_eq!(Url::parse("127.0.0.1:80"), None);
    }

    #[test]
    fn http_and_tcp_checks_tell_up_from_down() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for answer in ["HTTP/1.1 200 OK", "HTTP/1.0 503 Unavailable"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = write!(stream, "{answer}\r\nContent-Length: 2\r\n\r\nok");
            }
        });
        let url = format!("http://user:pw@127.0.0.1:{port}/health");
        let (status, peer) = http(&url, Duration::from_secs(5)).unwrap();
        assert_eq!((status, peer.port()), (200, port));
        let err = http(&url, Duration::from_secs(5)).unwrap_err();
        assert!(err.ends_with("answered 503"), "{err}");
        assert!(!err.contains("pw"), "{err}");
        server.join().unwrap();
        let down = TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(tcp(&format!("127.0.0.1:{down}"), Duration::from_secs(1)).is_err());
        assert!(http(&format!("http://127.0.0.1:{down}/"), Duration::from_secs(1)).is_err());
    }

    /// A peer that accepts and sends one byte every 50 ms, forever: the check ends at its
    /// deadline all the same.
    #[test]
    fn a_dripping_peer_does_not_stretch_the_deadline() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                for b in b"HTTP/1.1 200 OK\r\nX-Slow: "
                    .iter()
                    .chain(std::iter::repeat(&b'a'))
                {
                    if stream.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        let clock = Instant::now();
        let err = http(
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(700),
        )
        .unwrap_err();
        let took = clock.elapsed();
        assert!(err.contains("no complete answer within 700.0 ms"), "{err}");
        assert!(took < Duration::from_millis(700) + SLICE * 3, "{took:?}");
    }

    #[test]
    fn listeners_are_read_with_their_addresses() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let found = listeners();
        assert!(found.iter().any(|(a, _)| *a == addr), "{addr} in {found:?}");
        assert!(accepts(
            &"0.0.0.0:80".parse().unwrap(),
            &"127.0.0.1:80".parse().unwrap()
        ));
        assert!(accepts(
            &"[::]:80".parse().unwrap(),
            &"127.0.0.1:80".parse().unwrap()
        ));
        assert!(accepts(
            &"[::ffff:127.0.0.1]:80".parse().unwrap(),
            &"127.0.0.1:80".parse().unwrap()
        ));
        assert!(!accepts(
            &"127.0.0.2:80".parse().unwrap(),
            &"127.0.0.1:80".parse().unwrap()
        ));
        assert!(!accepts(
            &"127.0.0.1:81".parse().unwrap(),
            &"127.0.0.1:80".parse().unwrap()
        ));
    }
}
