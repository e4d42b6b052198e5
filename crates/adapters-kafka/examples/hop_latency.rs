//! Measures one hop of the Kafka bus: the time from `publish` of one event until the
//! subscriber's `next` returns it, and how long a new group takes to deliver its first event
//! (the group join). Usage:
//!
//! ```sh
//! cargo run -p adapters-kafka --example hop_latency -- 127.0.0.1:19092 50 [FETCH_WAIT_MS | legacy]
//! ```
//!
//! `legacy` measures the settings before they were tuned: librdkafka's defaults
//! (`fetch.wait.max.ms` 500, Nagle on, reconnect back-off up to 10 s) and `linger.ms` 5.

use adapters_kafka::{KafkaBus, KafkaConfig};
use chrono::Utc;
use flow_domain::event::{Event, names};
use flow_domain::ports::{EventPublisher, EventSubscriber};
use serde_json::json;
use std::time::{Duration, Instant};

fn event(seq: usize) -> Event {
    Event::new(names::FLOW_EXECUTE, Some(format!("flow-{seq}")), "hop", json!({ "seq": seq }), Utc::now())
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let count: usize = args.next().map_or(Ok(50), |n| n.parse())?;
    let mut config = KafkaConfig::new(brokers);
    match args.next().as_deref() {
        None => {}
        Some("legacy") => {
            config.fetch_wait_max = Duration::from_millis(500);
            config.linger = Duration::from_millis(5);
            config.reconnect_backoff_max = Duration::from_secs(10);
            config.properties.push(("socket.nagle.disable".into(), "false".into()));
        }
        Some(ms) => config.fetch_wait_max = Duration::from_millis(ms.parse()?),
    }
    config.topic_prefix = format!("hop{}", Utc::now().timestamp_micros());
    let started = Instant::now();
    let bus = KafkaBus::connect(config).await?;
    let connected = started.elapsed();

    let started = Instant::now();
    let mut stream = bus.subscribe("hop", &[names::FLOW_EXECUTE]).await?;
    let first = event(0);
    bus.publish(std::slice::from_ref(&first)).await?;
    let got = stream.next().await.ok_or_else(|| anyhow::anyhow!("stream ended"))?;
    anyhow::ensure!(got.id == first.id, "unexpected first event");
    stream.ack(&got).await?;
    let joined = started.elapsed();

    let mut hops = Vec::with_capacity(count);
    for seq in 1..=count {
        let sent = event(seq);
        let t0 = Instant::now();
        bus.publish(std::slice::from_ref(&sent)).await?;
        let published = t0.elapsed();
        let got = stream.next().await.ok_or_else(|| anyhow::anyhow!("stream ended"))?;
        let hop = t0.elapsed();
        anyhow::ensure!(got.id == sent.id, "events out of order");
        stream.ack(&got).await?;
        hops.push((hop, published));
    }
    let mut total: Vec<Duration> = hops.iter().map(|h| h.0).collect();
    let mut publish: Vec<Duration> = hops.iter().map(|h| h.1).collect();
    total.sort_unstable();
    publish.sort_unstable();
    let pick = |v: &[Duration], q: f64| millis(v[((v.len() - 1) as f64 * q).round() as usize]);
    println!("connect (topics + producer): {:.0} ms", millis(connected));
    println!("subscribe -> first event (group join): {:.0} ms", millis(joined));
    println!(
        "hop publish -> next over {count} events: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        pick(&total, 0.5),
        pick(&total, 0.9),
        pick(&total, 1.0)
    );
    println!(
        "  of which publish (until acked by the broker): p50 {:.1} ms, p90 {:.1} ms",
        pick(&publish, 0.5),
        pick(&publish, 0.9)
    );
    drop(stream);
    bus.shutdown().await;
    Ok(())
}
