//! Figures on the Relukko backend, against our server in this process:
//! uncontended acquire + release, handoffs with and without the WebSocket,
//! and 16 clients contending for one lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relukko::{Client, LockOptions, Locker};
use relukko_server::TestServer;

use crate::budget::Budget;

/// The longest any single lock call of the bench may wait.
const WAIT: Duration = Duration::from_secs(20);

/// A locker on its own client (own connections, own WebSocket watcher), as a
/// separate test process would have.
pub fn locker(server: &TestServer, websocket: bool) -> Result<Locker, String> {
    let client = Client::builder(server.base_url())
        .api_key(server.api_key())
        .websocket(websocket)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Locker::relukko(client))
}

fn opts(name: &str) -> LockOptions {
    LockOptions::new(name).timeout(WAIT)
}

/// Acquire + release of a free lock with a warm client; `warm` rounds first
/// that do not count.
pub async fn uncontended(
    server: &TestServer,
    warm: usize,
    n: usize,
    budget: &Budget,
) -> Result<Vec<Duration>, String> {
    let locker = locker(server, true)?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warm + n {
        if budget.over() {
            break;
        }
        let start = Instant::now();
        let lease = locker
            .lock(opts("bench-uncontended"))
            .await
            .map_err(|e| e.to_string())?;
        lease.release().await.map_err(|e| e.to_string())?;
        if i >= warm {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// Handoffs between two clients: the holder holds for a random time in
/// `hold` (so the waiter is really waiting), then releases; a sample is the
/// time from the start of the release to the waiter holding the lock.
pub async fn handoff(
    server: &TestServer,
    waiter_server: &TestServer,
    websocket: bool,
    warm: usize,
    n: usize,
    hold: (Duration, Duration),
    budget: &Budget,
) -> Result<Vec<Duration>, String> {
    let name = if websocket {
        "bench-handoff-ws"
    } else {
        "bench-handoff-poll"
    };
    let holder = locker(server, websocket)?;
    let waiter = locker(waiter_server, websocket)?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warm + n {
        // A round takes at most the longest hold plus a poll period or so.
        if budget.left() < hold.1 + Duration::from_secs(2) {
            break;
        }
        let held = holder.lock(opts(name)).await.map_err(|e| e.to_string())?;
        let w = waiter.clone();
        let waiting = tokio::spawn(async move {
            let lease = w.lock(opts(name)).await;
            (lease, Instant::now())
        });
        tokio::time::sleep(random_between(hold)).await;
        let t0 = Instant::now();
        held.release().await.map_err(|e| e.to_string())?;
        let (lease, t1) = waiting.await.map_err(|e| e.to_string())?;
        let lease = lease.map_err(|e| e.to_string())?;
        lease.release().await.map_err(|e| e.to_string())?;
        if i >= warm {
            samples.push(t1.saturating_duration_since(t0));
        }
    }
    Ok(samples)
}

/// What the contention run found.
#[derive(Debug, Default)]
pub struct Contention {
    pub clients: usize,
    pub seconds: f64,
    pub handoffs: usize,
    pub overlaps: usize,
    pub errors: Vec<String>,
}

/// `clients` clients, each on its own client, take one lock in turns for
/// `run`; every hold is written to a shared history, checked afterwards for
/// two holds that overlap in time.
pub async fn contention(
    server: &TestServer,
    clients: usize,
    run: Duration,
) -> Result<Contention, String> {
    let history: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let start = Instant::now();
    let end = start + run;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let locker = locker(server, true)?;
        let history = history.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(());
                }
                let call = locker.lock(LockOptions::new("bench-contention").timeout(left));
                let lease = match tokio::time::timeout(left + Duration::from_secs(1), call).await {
                    Ok(Ok(lease)) => lease,
                    // Waiting past the end of the run: done.
                    Ok(Err(relukko::Error::WaitTimeout { .. })) | Err(_) => return Ok(()),
                    Ok(Err(e)) => return Err(e.to_string()),
                };
                let from = Instant::now();
                std::hint::black_box(0); // the (trivial) body
                let to = Instant::now();
                history
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((from, to));
                if let Err(e) = lease.release().await {
                    return Err(e.to_string());
                }
            }
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut holds = std::mem::take(&mut *history.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Contention {
        clients,
        seconds,
        handoffs: holds.len(),
        overlaps: overlaps(&mut holds),
        errors,
    })
}

/// How many holds began before an earlier one had ended.
fn overlaps(holds: &mut [(Instant, Instant)]) -> usize {
    holds.sort();
    let mut latest_end: Option<Instant> = None;
    let mut n = 0;
    for &(from, to) in holds.iter() {
        if latest_end.is_some_and(|e| from < e) {
            n += 1;
        }
        latest_end = Some(latest_end.map_or(to, |e| e.max(to)));
    }
    n
}

/// A random duration in `[lo, hi]`.
pub fn random_between((lo, hi): (Duration, Duration)) -> Duration {
    let span = hi.saturating_sub(lo).as_micros() as u64;
    lo + Duration::from_micros(fastrand::u64(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_counts_holds_that_began_before_an_earlier_one_ended() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Back to back (an end equal to the next start is no overlap).
        let mut clean = vec![(at(20), at(30)), (at(0), at(10)), (at(10), at(20))];
        assert_eq!(overlaps(&mut clean), 0);
        // The second starts inside the first; the third inside the long first.
        let mut two = vec![(at(0), at(100)), (at(50), at(60)), (at(70), at(80))];
        assert_eq!(overlaps(&mut two), 2);
        let mut after = vec![(at(0), at(100)), (at(50), at(60)), (at(100), at(110))];
        assert_eq!(overlaps(&mut after), 1);
        assert_eq!(overlaps(&mut []), 0);
    }
}
