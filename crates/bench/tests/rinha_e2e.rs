//! `reroute bench rinha` end to end: short runs against the simulated
//! processors, checked against the simulator's own books.
//!
//! The preview runs against a minimal backend written here, deliberately
//! naive: it forwards each payment to `default` synchronously (requestedAt =
//! now), answers 200 only when the processor did, and keeps an in-memory
//! ledger for `/payments-summary`. With gentle stages it is exactly
//! consistent, so every count in the report is known.
//!
//! The final runs against the real router, with the simulator started as
//! `reroute sim --default-fee 0.07 --fallback-fee 0.10` would start it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reroute_bench::rinha::{
    self, FINAL_STAGES, PREVIEW_STAGES, ProcessorSetting, RinhaOptions, Scenario, Stage,
};
use reroute_core::{Money, Timestamp, Window};
use reroute_sim::{Sim, SimArgs, SimConfig};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

mod common;
use common::{get_json, spawn_router};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The minimal backend's state: where to forward, and what was processed.
struct Ledger {
    default_url: String,
    client: HttpClient,
    /// (requestedAt sent to the processor, amount) of every payment it took.
    payments: Mutex<Vec<(Timestamp, Money)>>,
}

#[derive(serde::Deserialize)]
struct PaymentIn {
    #[serde(rename = "correlationId")]
    correlation_id: String,
    amount: Money,
}

#[derive(serde::Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

async fn pay(State(ledger): State<Arc<Ledger>>, body: Bytes) -> StatusCode {
    let Ok(payment) = serde_json::from_slice::<PaymentIn>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // Forwarded in a task of its own so that a client giving up does not
    // cancel it half-way: what the processor accepts is always booked.
    let forward = tokio::spawn(async move {
        let requested_at = Timestamp::now();
        let body = format!(
            r#"{{"correlationId":"{}","amount":{},"requestedAt":"{}"}}"#,
            payment.correlation_id, payment.amount, requested_at
        );
        let request = hyper::Request::post(format!("{}/payments", ledger.default_url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let answer = ledger.client.request(request).await;
        let stored = matches!(&answer, Ok(response) if response.status() == StatusCode::OK);
        if stored {
            ledger
                .payments
                .lock()
                .unwrap()
                .push((requested_at, payment.amount));
        }
        stored
    });
    match forward.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::BAD_GATEWAY,
    }
}

async fn summary(
    State(ledger): State<Arc<Ledger>>,
    Query(range): Query<Range>,
) -> impl IntoResponse {
    let bound = |text: &Option<String>| text.as_deref().and_then(|t| t.parse().ok());
    let window = Window::new(bound(&range.from), bound(&range.to));
    let payments = ledger.payments.lock().unwrap();
    let inside = payments.iter().filter(|(at, _)| window.contains(*at));
    let (count, total) = inside.fold((0u64, Money::ZERO), |(n, sum), (_, amount)| {
        (n + 1, sum + *amount)
    });
    let body = format!(
        r#"{{"default":{{"totalRequests":{count},"totalAmount":{total}}},"fallback":{{"totalRequests":0,"totalAmount":0}}}}"#
    );
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn purge(State(ledger): State<Arc<Ledger>>) -> StatusCode {
    ledger.payments.lock().unwrap().clear();
    StatusCode::OK
}

/// Starts the minimal backend on a free port; returns its URL and ledger.
async fn spawn_backend(default_url: String) -> (String, Arc<Ledger>) {
    let ledger = Arc::new(Ledger {
        default_url,
        client: http_client(),
        payments: Mutex::default(),
    });
    let app = Router::new()
        .route("/payments", post(pay))
        .route("/payments-summary", get(summary))
        .route("/purge-payments", post(purge))
        .with_state(ledger.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, ledger)
}

/// A processor's own books, read straight from its admin API.
async fn books(url: &str, path: &str) -> serde_json::Value {
    get_json(&format!("{url}{path}")).await
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn options(sim: &Sim, backend: &str, stages: Vec<Stage>) -> RinhaOptions {
    RinhaOptions {
        max_users: 20,
        duration: Duration::from_secs(5),
        stages,
        participant: "e2e".to_owned(),
        ..RinhaOptions::new(
            backend.parse().unwrap(),
            sim.url("default").parse().unwrap(),
            sim.url("fallback").parse().unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_what_the_processors_booked() {
    let sim = reroute_sim::spawn(SimConfig::rinha_on_free_ports())
        .await
        .unwrap();
    let (backend, ledger) = spawn_backend(sim.url("default")).await;
    // Stale state the setup must purge.
    ledger
        .payments
        .lock()
        .unwrap()
        .push((Timestamp::now(), Money::from_minor(1990)));

    // Gentle stages (on the 60 s timeline): default slow-ish, then failing
    // for a third of the run, then well again. Nothing outlasts the timeout,
    // so the naive backend stays exactly consistent.
    let stage = |at: u64, delay_ms: u64, failing: bool| Stage {
        at: Duration::from_secs(at),
        default: ProcessorSetting::new(delay_ms, failing),
        fallback: ProcessorSetting::new(0, false),
    };
    let stages = vec![stage(1, 5, false), stage(20, 5, true), stage(40, 0, false)];
    let report = rinha::run(options(&sim, &backend, stages)).await.unwrap();
    eprintln!("{report}");

    let accepted = report.requested.accepted;
    assert!(accepted > 20, "users ramped and paid: {accepted}");
    assert!(
        report.requested.failed > 0,
        "default failed for a third of the run"
    );
    assert_eq!(
        report.reroute.payments.sent,
        accepted + report.requested.failed
    );

    // The backend's books, the processor's books and the report agree.
    let booked = books(&sim.url("default"), "/admin/payments-summary").await;
    assert_eq!(booked["totalRequests"].as_u64(), Some(accepted));
    assert_eq!(ledger.payments.lock().unwrap().len() as u64, accepted);
    assert_eq!(report.processed_default.payments, accepted);
    assert_eq!(report.processed_fallback.payments, 0);
    assert_eq!(report.reroute.teardown.default.total_requests, accepted);
    assert_eq!(report.lag.lag, 0);
    assert_eq!(report.lag.recorded, accepted);
    assert!(!report.slush_fund.detected);

    // Audits ran all along (every 10 s scaled to 5 s: ~0.83 s) and agreed.
    assert!(
        report.reroute.audits.len() >= 4,
        "audits: {}",
        report.reroute.audits.len()
    );
    assert_eq!(report.fine.breakdown.inconsistencies, 0);
    assert_eq!(report.fine.rate, Decimal::ZERO);
    assert!(report.reroute.audits.iter().all(|a| !a.disagrees()));

    // Money, exactly.
    let gross = d("19.90") * Decimal::from(accepted);
    assert_eq!(report.gross, gross);
    assert_eq!(report.processed_default.amount, gross);
    assert_eq!(report.fees, gross * d("0.05"));
    assert_eq!(
        report.reroute.teardown.default.fee_per_transaction,
        d("0.05")
    );
    let bonus = reroute_bench::score::bonus(report.reroute.p99_ms_exact);
    let net = gross - report.fees;
    assert_eq!(report.score, net + net * bonus);

    // The p99 covers payments and every other successful request.
    assert!(report.p99.value.ends_with("ms"));
    assert!(report.reroute.p99_ms_exact > Decimal::ZERO);
    assert!(report.reroute.http.expected_responses > accepted);
    assert!(
        report.reroute.warnings.is_empty(),
        "{:?}",
        report.reroute.warnings
    );

    // The JSON carries the official field names.
    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "participante",
        "total_liquido",
        "total_bruto",
        "total_taxas",
        "p99",
        "multa",
        "caixa_dois",
        "lag",
        "pagamentos_solicitados",
        "pagamentos_realizados_default",
        "pagamentos_realizados_fallback",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert_eq!(
        json["pagamentos_solicitados"]["qtd_sucesso"].as_u64(),
        Some(accepted)
    );
    assert_eq!(
        json["multa"]["composicao"]["num_inconsistencias"].as_u64(),
        Some(0)
    );
    assert_eq!(json["caixa_dois"]["detectado"], false);

    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_stages_play_out_on_a_short_run() {
    let sim = reroute_sim::spawn(SimConfig::rinha_on_free_ports())
        .await
        .unwrap();
    let (backend, _ledger) = spawn_backend(sim.url("default")).await;

    let report = rinha::run(options(&sim, &backend, PREVIEW_STAGES.to_vec()))
        .await
        .unwrap();
    eprintln!("{report}");

    // default failed from t=20 s to t=40 s (scaled: 1.7 s to 3.3 s): the
    // naive backend, tied to default, could not accept everything.
    assert!(report.requested.accepted > 0);
    assert!(report.requested.failed > 0);
    // The last stage is in force: default 0 ms and well, fallback 5000 ms.
    for (id, delay) in [("default", 0), ("fallback", 5000)] {
        let health = books(&sim.url(id), "/payments/service-health").await;
        assert_eq!(health["failing"], false, "{id}");
        assert_eq!(health["minResponseTime"].as_u64(), Some(delay), "{id}");
    }
    // The report is consistent with itself.
    let d = &report.reroute.teardown.backend;
    assert_eq!(
        report.lag.recorded,
        d.default.total_requests + d.fallback.total_requests
    );
    assert_eq!(
        report.lag.lag,
        i128::from(report.requested.accepted) - i128::from(report.lag.recorded)
    );
    assert_eq!(report.slush_fund.detected, report.lag.lag < 0);
    assert!(report.reroute.audits.len() >= 4);
    // The preview has its stage timeline too: where the p99 and the
    // failures came from, stage by stage.
    let stages = &report.reroute.stages;
    assert_eq!(stages.len(), PREVIEW_STAGES.len());
    for (row, stage) in stages.iter().zip(PREVIEW_STAGES) {
        assert_eq!((row.default, row.fallback), (stage.default, stage.fallback));
    }
    let sent: u64 = stages.iter().map(|r| r.sent).sum();
    let accepted: u64 = stages.iter().map(|r| r.accepted).sum();
    assert_eq!(sent, report.reroute.payments.sent);
    assert_eq!(accepted, report.requested.accepted);
    // default failed in the third and fourth stages: the naive backend's
    // failures are there, none in the first (default well, far from them).
    assert_eq!(stages[0].sent, stages[0].accepted);
    assert!(stages[2].sent + stages[3].sent > stages[2].accepted + stages[3].accepted);

    sim.shutdown().await;
}

#[derive(Parser)]
struct SimCli {
    #[command(flatten)]
    sim: SimArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_runs_its_ten_stages_against_a_router_and_scores_the_final_fees() {
    // The simulator as `reroute sim --default-fee 0.07 --fallback-fee 0.10`
    // starts it, on free ports.
    let argv = "sim --default-port 0 --fallback-port 0 --default-fee 0.07 --fallback-fee 0.10";
    let config = SimCli::parse_from(argv.split(' ')).sim.to_config().unwrap();
    let sim = reroute_sim::spawn(config).await.unwrap();

    // The real router, on the embedded store.
    let dir = tempfile::tempdir().unwrap();
    let (default_url, fallback_url) = (sim.url("default"), sim.url("fallback"));
    let args = [
        "--default-url",
        &default_url,
        "--fallback-url",
        &fallback_url,
    ];
    let server = spawn_router(dir.path(), &args).await;
    let router = server.url.clone();

    // The final's 300 s in 6 s: a stage every 0.6 s, audits every 0.2 s.
    let options = RinhaOptions {
        max_users: 20,
        duration: Duration::from_secs(6),
        participant: "e2e-final".to_owned(),
        ..RinhaOptions::of(
            Scenario::Final,
            router.parse().unwrap(),
            sim.url("default").parse().unwrap(),
            sim.url("fallback").parse().unwrap(),
        )
    };
    let report = rinha::run(options).await.unwrap();
    eprintln!("{report}");

    // The report says which script ran, in the JSON and the summary.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["reroute"]["scenario"], "final");
    assert!(json["timestamp"].is_string(), "{json}");
    assert_eq!(json["p99"]["max_requests"], 20);
    assert!(
        report
            .to_string()
            .starts_with("rinha final: 6s, up to 20 users")
    );

    // Every stage was applied: the last one is in force (default 2000 ms,
    // fallback 0 ms, neither failing) and the timeline lists all ten.
    for (id, delay) in [("default", 2000), ("fallback", 0)] {
        let health = books(&sim.url(id), "/payments/service-health").await;
        assert_eq!(health["failing"], false, "{id}");
        assert_eq!(health["minResponseTime"].as_u64(), Some(delay), "{id}");
    }
    let stages = &report.reroute.stages;
    assert_eq!(stages.len(), 10);
    for (row, stage) in stages.iter().zip(FINAL_STAGES) {
        assert_eq!((row.default, row.fallback), (stage.default, stage.fallback));
        // 30 s of 300 scaled to 6 s: 600 ms apart (the first at 1 s of 300).
        assert_eq!(row.at_ms, stage.at.as_millis() as u64 / 50);
    }
    let sent: u64 = stages.iter().map(|r| r.sent).sum();
    let accepted: u64 = stages.iter().map(|r| r.accepted).sum();
    assert_eq!(sent, report.reroute.payments.sent);
    assert_eq!(accepted, report.requested.accepted);
    assert!(report.requested.accepted > 20, "users ramped and paid");

    // The final's windows: audits over [now - 15 s, now - 2 s], a 360 s
    // teardown.
    assert!(report.reroute.audits.len() >= 10);
    for audit in &report.reroute.audits {
        assert_eq!(audit.to.millis() - audit.from.millis(), 13_000);
    }
    let teardown = &report.reroute.teardown;
    assert_eq!(teardown.to.millis() - teardown.from.millis(), 360_000);

    // Scored from the processors' books, at the processors' fees.
    assert_eq!(teardown.default.fee_per_transaction, d("0.07"));
    assert_eq!(teardown.fallback.fee_per_transaction, d("0.10"));
    assert_eq!(
        report.processed_default.payments,
        teardown.default.total_requests
    );
    assert_eq!(
        report.processed_fallback.payments,
        teardown.fallback.total_requests
    );
    let recorded = report.processed_default.payments + report.processed_fallback.payments;
    assert_eq!(report.lag.recorded, recorded);
    assert_eq!(report.gross, d("20.05") * Decimal::from(recorded));
    assert_eq!(
        report.fees,
        report.processed_default.amount * d("0.07") + report.processed_fallback.amount * d("0.10")
    );
    // The books per stage add up to at least what the teardown saw (they
    // are read a moment later, and may catch a payment that landed since).
    let booked: u64 = stages
        .iter()
        .map(|r| r.booked_default + r.booked_fallback)
        .sum();
    assert!(booked >= recorded, "{booked} < {recorded}");

    server.stop().await;
    sim.shutdown().await;
}
