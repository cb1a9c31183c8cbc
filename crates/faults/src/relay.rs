//! `reroute bench relay`: a TCP relay that delays every byte by a fixed time
//! each way, to run a test as if a service (PostgreSQL, typically) were on
//! another host: `--delay-ms 0.5` adds 1 ms to every round trip.
//!
//! Threads, not the runtime: Tokio's timers tick every millisecond, and the
//! delays that matter here are fractions of one. Each direction of each
//! connection has a reader that stamps every chunk with the instant it
//! arrived, and a writer that sends it on once that instant plus the delay
//! has passed, so bytes keep their order and a burst is delayed, not
//! spread. Connections are few (a pool's), so threads are cheap.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Where to listen, e.g. 127.0.0.1:5433.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where to relay to, e.g. 127.0.0.1:5432.
    #[arg(long)]
    pub to: SocketAddr,
    /// Delay added each way, in milliseconds (fractions allowed).
    #[arg(long, value_parser = parse_delay)]
    pub delay_ms: Duration,
}

fn parse_delay(text: &str) -> Result<Duration, String> {
    let ms: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of milliseconds"))?;
    if !(0.0..=10_000.0).contains(&ms) {
        return Err(format!("a delay of {ms} ms is outside 0..=10000"));
    }
    Ok(Duration::from_secs_f64(ms / 1_000.0))
}

/// How long the relay waits to reach the target before it drops a client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Relays until killed.
pub fn run(args: RelayArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!(
        "relay: {} -> {}, {:?} each way",
        listener.local_addr()?,
        args.to,
        args.delay_ms
    );
    for inbound in listener.incoming() {
        let Ok(inbound) = inbound else { continue };
        let (to, delay) = (args.to, args.delay_ms);
        std::thread::spawn(move || {
            if let Err(e) = relay(inbound, to, delay) {
                eprintln!("relay: a connection ended: {e:#}");
            }
        });
    }
    Ok(())
}

fn relay(inbound: TcpStream, to: SocketAddr, delay: Duration) -> anyhow::Result<()> {
    let outbound = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT)
        .with_context(|| format!("cannot reach {to}"))?;
    for stream in [&inbound, &outbound] {
        stream.set_nodelay(true)?;
    }
    let up = direction(inbound.try_clone()?, outbound.try_clone()?, delay);
    let down = direction(outbound, inbound, delay);
    for half in [up, down] {
        let _ = half.join();
    }
    Ok(())
}

/// Copies `from` to `to`, each chunk `delay` after it arrived; shuts `to`'s
/// writing side when `from` ends.
fn direction(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
) -> std::thread::JoinHandle<()> {
    let (chunks, arrived) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (at, chunk) in arrived {
            let due = at + delay;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        drop(chunks);
        let _ = writer.join();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_each_way_and_no_sooner_than_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => s.write_all(&buf[..n]).unwrap(),
                }
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = front.local_addr().unwrap();
        let delay = Duration::from_millis(20);
        std::thread::spawn(move || {
            let (inbound, _) = front.accept().unwrap();
            relay(inbound, target, delay).unwrap();
        });
        let mut client = TcpStream::connect(listen).unwrap();
        let sent = Instant::now();
        client.write_all(b"one").unwrap();
        client.write_all(b"two").unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"onetwo");
        // There and back: at least the delay twice (a lower bound only;
        // how much longer depends on the machine).
        assert!(sent.elapsed() >= 2 * delay, "{:?}", sent.elapsed());
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.read(&mut got).unwrap(), 0, "the end is relayed");
    }

    #[test]
    fn a_delay_is_milliseconds_with_fractions() {
        assert_eq!(parse_delay("0.5").unwrap(), Duration::from_micros(500));
        assert!(parse_delay("-1").is_err());
        assert!(parse_delay("fast").is_err());
    }
}
