//! PostgreSQL going away under a running store: a statement stuck behind a
//! lock times out as unavailable, an outage is reported and the store
//! recovers when the database returns, and a store opened during an outage
//! waits for it. A [`Link`] relay stands between the store and the database
//! so that a test can cut it and restore it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Engine, Postgres, payment};
use reroute_store::{Acceptance, Store, StoreError};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_times_out_as_unavailable() {
    let engine = Postgres::new().await;
    let store = engine
        .open_with(reroute_store::PostgresConfig {
            statement_timeout: Duration::from_millis(300),
            ..engine.config()
        })
        .await;
    let mut blocker = engine.client().await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let refused = store.accept(payment(1, 1)).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    tx.rollback().await.unwrap();
    assert_eq!(store.accept(payment(1, 1)).await.unwrap(), Acceptance::New);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_reported_and_the_store_recovers_when_it_returns() {
    let engine = Postgres::new().await;
    let mut link = Link::open(&engine).await;
    let store = engine
        .open_with(reroute_store::PostgresConfig {
            url: link.url.clone(),
            statement_timeout: Duration::from_millis(500),
            ..engine.config()
        })
        .await;
    let before = payment(1, 1);
    assert_eq!(store.accept(before.clone()).await.unwrap(), Acceptance::New);

    link.cut().await;
    for op in 0..3 {
        let started = Instant::now();
        let refused = store.accept(payment(2, 2)).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "op {op}: {refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(4), "bounded");
        assert!(matches!(
            store.pending().await,
            Err(StoreError::Unavailable(_))
        ));
    }

    link.restore().await;
    let after = payment(3, 3);
    let mut recovered = store.accept(after.clone()).await;
    for _ in 0..20 {
        if recovered.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        recovered = store.accept(after.clone()).await;
    }
    assert_eq!(recovered.unwrap(), Acceptance::New);
    let pending: Vec<_> = store
        .pending()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.payment.id)
        .collect();
    assert!(pending.contains(&before.id) && pending.contains(&after.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_during_an_outage_waits_for_the_database() {
    let engine = Postgres::new().await;
    let mut link = Link::open(&engine).await;
    link.cut().await;
    let config = reroute_store::PostgresConfig {
        url: link.url.clone(),
        statement_timeout: Duration::from_millis(500),
        ..engine.config()
    };
    let (tries, mut failed) = tokio::sync::mpsc::unbounded_channel();
    let opening = tokio::spawn(reroute_store::PostgresStore::connect_patiently(
        config,
        move |n, e| {
            let _ = tries.send((n, e.to_string()));
        },
    ));
    // It keeps trying while nothing answers...
    for expected in 1..=2 {
        let (n, error) = failed.recv().await.expect("a failed try is reported");
        assert_eq!(n, expected);
        assert!(error.contains("unavailable"), "{error}");
    }
    assert!(!opening.is_finished(), "it waits rather than fails");
    // ...and comes up once the database is back.
    link.restore().await;
    let store = opening
        .await
        .unwrap()
        .expect("connected once PostgreSQL is back");
    assert_eq!(store.accept(payment(1, 1)).await.unwrap(), Acceptance::New);

    // A database that does not exist is a misconfiguration: no waiting.
    let dbname = link
        .url
        .split("dbname=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let wrong = reroute_store::PostgresConfig {
        url: link.url.replace(
            &format!("dbname={dbname}"),
            "dbname=reroute_no_such_database",
        ),
        ..engine.config()
    };
    let refused = reroute_store::PostgresStore::connect_patiently(wrong, |n, e| {
        panic!("try {n} waited on a misconfiguration: {e}")
    })
    .await;
    assert!(
        matches!(&refused, Err(StoreError::Misconfigured(m)) if m.contains("3D000")),
        "{:?}",
        refused.err()
    );
}

/// A TCP relay between the store and PostgreSQL that can be cut (every
/// connection dropped, nothing listening) and restored on the same port.
struct Link {
    url: String,
    addr: SocketAddr,
    target: SocketAddr,
    relay: JoinSet<()>,
}

impl Link {
    async fn open(engine: &Postgres) -> Link {
        let config: tokio_postgres::Config = engine.url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("the test database must be reached over TCP, not {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = tokio::net::lookup_host((host.as_str(), port))
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut url = format!(
            "host=127.0.0.1 port={} user={} dbname={}",
            addr.port(),
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres"),
        );
        if let Some(password) = config.get_password() {
            url.push_str(&format!(" password={}", String::from_utf8_lossy(password)));
        }
        let mut link = Link {
            url,
            addr,
            target,
            relay: JoinSet::new(),
        };
        link.relay.spawn(relay(listener, target));
        link
    }

    async fn cut(&mut self) {
        self.relay.abort_all();
        while self.relay.join_next().await.is_some() {}
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.relay.spawn(relay(listener, self.target));
    }
}

async fn relay(listener: TcpListener, target: SocketAddr) {
    // Aborting this task drops the listener and every relayed connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
