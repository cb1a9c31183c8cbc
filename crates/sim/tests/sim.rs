//! Starting and stopping the simulator as the library's users do.

mod common;

use std::collections::HashSet;

use common::{Http, spawn, spawn_rinha};
use hyper::StatusCode;
use reroute_sim::SimConfig;

#[tokio::test]
async fn spawn_binds_every_processor_on_a_free_port_and_reports_its_url() {
    let sim = spawn_rinha().await;
    assert_eq!(sim.ids(), ["default", "fallback"]);
    let ports: HashSet<u16> = sim.ids().iter().map(|id| sim.addr(id).port()).collect();
    assert_eq!(ports.len(), 2);
    assert!(!ports.contains(&0));
    for id in sim.ids() {
        assert_eq!(
            sim.url(&id),
            format!("http://127.0.0.1:{}", sim.addr(&id).port())
        );
    }
}

#[tokio::test]
async fn a_taken_port_fails_spawn_naming_the_processor() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = SimConfig::rinha_on_free_ports();
    config.processors[1].port = taken.local_addr().unwrap().port();
    let err = reroute_sim::spawn(config)
        .await
        .err()
        .expect("the port is taken");
    assert!(format!("{err:#}").contains("fallback"), "{err:#}");
}

#[tokio::test]
async fn shutdown_closes_every_listener() {
    let sim = spawn_rinha().await;
    let addr = sim.addr("default");
    let http = Http::default();
    assert_eq!(
        http.pay_one(&sim.url("default")).await.1.status,
        StatusCode::OK
    );
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn the_five_techcart_processors_load_from_a_toml_file_and_serve() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/techcart.toml");
    let config = SimConfig::from_toml_file(path).unwrap();
    let sim = spawn(config).await;
    assert_eq!(
        sim.ids(),
        [
            "processor_a",
            "processor_b",
            "processor_c",
            "processor_d",
            "processor_e"
        ]
    );
    let http = Http::default();
    for id in sim.ids() {
        let summary = http.summary(&sim.url(&id), "").await;
        assert_eq!(summary["totalRequests"], 0, "{id}");
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_hanging_request() {
    let sim = spawn_rinha().await;
    let http = Http::default();
    let base = sim.url("default");
    sim.processor("default")
        .set_faults(reroute_sim::Faults {
            hang_rate: 1.0,
            ..Default::default()
        })
        .unwrap();
    let hanging = http.pay_one_in_background(&base);
    common::eventually("the request hangs", || async {
        sim.processor("default").stats().payments_hung == 1
    })
    .await;
    tokio::time::timeout(std::time::Duration::from_secs(5), sim.shutdown())
        .await
        .expect("shutdown cuts hanging requests after its grace period");
    hanging.abort();
}
