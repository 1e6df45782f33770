//! Timing: one task through a list of URLs, and many tasks sharing one client.

use std::time::{Duration, Instant};

use reqwest_middleware::ClientWithMiddleware;

pub(crate) const ITERATIONS: usize = 20_000;
/// Timed hits per round of a contender on a server (a loopback round trip each, 70-200 µs):
/// enough for a steady median, a tenth of the in-process count.
pub(crate) const REMOTE_ITERATIONS: usize = 2_000;

/// Median and 99th percentile of per-request latencies.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
}

pub(crate) fn stats(mut samples: Vec<Duration>) -> Stats {
    if samples.is_empty() {
        return Stats::default();
    }
    samples.sort_unstable();
    Stats {
        median: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
    }
}

/// One request and its whole body.
pub(crate) async fn get(client: &ClientWithMiddleware, url: &str) {
    let body = client
        .get(url)
        .send()
        .await
        .expect("request")
        .bytes()
        .await
        .expect("body");
    std::hint::black_box(body);
}

/// `iterations` requests, one after another, cycling through `urls`.
pub(crate) async fn time_requests(
    client: &ClientWithMiddleware,
    urls: &[String],
    iterations: usize,
) -> Stats {
    stats(time_each(client, urls, iterations).await)
}

/// [`time_requests`]' requests: the time each took.
pub(crate) async fn time_each(
    client: &ClientWithMiddleware,
    urls: &[String],
    iterations: usize,
) -> Vec<Duration> {
    time_from(client, urls, 0, iterations).await
}

/// `count` requests, one after another, through `urls` from index `start` on (wrapping):
/// the time each took.
pub(crate) async fn time_from(
    client: &ClientWithMiddleware,
    urls: &[String],
    start: usize,
    count: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let url = &urls[(start + i) % urls.len()];
        let started = Instant::now();
        get(client, url).await;
        samples.push(started.elapsed());
    }
    samples
}

/// Hits: every URL fetched once (stored), a warm-up, then the timed requests.
pub(crate) async fn hits(client: &ClientWithMiddleware, urls: &[String]) -> Stats {
    hits_timed(client, urls, ITERATIONS).await
}

/// [`hits`], timing `requests` requests (the warm-up is a tenth of them).
pub(crate) async fn hits_timed(
    client: &ClientWithMiddleware,
    urls: &[String],
    requests: usize,
) -> Stats {
    for url in urls {
        get(client, url).await;
    }
    time_requests(client, urls, requests / 10).await;
    time_requests(client, urls, requests).await
}

/// What many tasks sharing one client achieve together.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Throughput {
    pub(crate) per_second: f64,
    pub(crate) per_request: Stats,
}

/// `tasks` tasks, each making `per_task` requests over all of `urls` (each task starts at
/// another place in the list), after every URL was fetched once.
pub(crate) async fn concurrent(
    client: &ClientWithMiddleware,
    urls: &[String],
    tasks: usize,
    per_task: usize,
) -> Throughput {
    let (elapsed, samples) = concurrent_samples(client, urls, tasks, per_task).await;
    Throughput {
        per_second: (tasks * per_task) as f64 / elapsed.as_secs_f64(),
        per_request: stats(samples),
    }
}

/// The requests of [`concurrent`]: how long they all took, and each one's time.
pub(crate) async fn concurrent_samples(
    client: &ClientWithMiddleware,
    urls: &[String],
    tasks: usize,
    per_task: usize,
) -> (Duration, Vec<Duration>) {
    for url in urls {
        get(client, url).await;
    }
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let client = client.clone();
            let urls = urls.to_vec();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let url = &urls[(task * 7919 + i) % urls.len()];
                    let at = Instant::now();
                    get(&client, url).await;
                    samples.push(at.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(tasks * per_task);
    for handle in handles {
        samples.extend(handle.await.expect("task"));
    }
    (started.elapsed(), samples)
}

/// `tasks` tasks at once, each fetching its own share of `urls` once, in order: every request
/// a miss when the URLs are new. The time of the whole, and each request's
/// ([`concurrent_mixed_samples`] with no stored URLs among them).
pub(crate) async fn concurrent_miss_samples(
    client: &ClientWithMiddleware,
    urls: &[String],
    tasks: usize,
) -> (Duration, Vec<Duration>) {
    concurrent_mixed_samples(client, &[], urls, tasks, 1).await
}

/// `tasks` tasks at once, each sending `every` requests to the `hot` URLs (stored
/// beforehand: hits) for each one to a URL of `new` (its share of them: misses), until its
/// share of `new` is spent; the time of each request.
pub(crate) async fn concurrent_mixed_samples(
    client: &ClientWithMiddleware,
    hot: &[String],
    new: &[String],
    tasks: usize,
    every: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let hot = std::sync::Arc::new(hot.to_vec());
    let handles: Vec<_> = new
        .chunks(new.len().div_ceil(tasks.max(1)))
        .enumerate()
        .map(|(task, share)| {
            let (client, hot, share) = (client.clone(), hot.clone(), share.to_vec());
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(share.len() * every);
                let mut next_hot = task * 7;
                for url in &share {
                    for _ in 1..every {
                        next_hot = (next_hot + 1) % hot.len();
                        let at = Instant::now();
                        get(&client, &hot[next_hot]).await;
                        samples.push(at.elapsed());
                    }
                    let at = Instant::now();
                    get(&client, url).await;
                    samples.push(at.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for handle in handles {
        samples.extend(handle.await.expect("task"));
    }
    (started.elapsed(), samples)
}

pub(crate) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
