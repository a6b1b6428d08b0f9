//! `flumen run`: the pipelines of a config file until SIGINT or SIGTERM,
//! with reloads on SIGHUP, file changes and the admin endpoint.

use crate::config::Config;
use crate::ops::{admin, pipeline, reload};
use crate::stats::PipelineStats;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// Runs `flumen run --config PATH`.
pub fn command(path: PathBuf, progress: u64) -> anyhow::Result<ExitCode> {
    let config = Config::load(&path)?;
    // One worker thread: it keeps listening for a second signal while the
    // main thread drains.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    // Installed before the start (compiling components can take a while),
    // so that an early SIGHUP is held for later instead of killing flumen.
    let mut hup = rt
        .block_on(async { signal(SignalKind::hangup()) })
        .context("installing the SIGHUP handler")?;
    let running = pipeline::start(&config)?;
    let reloader = reload::ReloadHandle::for_running(&running, &path);
    if let Err(e) = start_reload_triggers(&config, &reloader, running.stats()) {
        running.stop();
        return Err(e);
    }
    tracing::info!(
        pipelines = config.pipelines.len(),
        "flumen running; SIGINT or SIGTERM stops it, SIGHUP reloads the components"
    );
    let on_hup = reloader.clone();
    rt.spawn(async move {
        while hup.recv().await.is_some() {
            let r = on_hup.clone();
            // The reload compiles; keep it off the signal task.
            let _ = tokio::task::spawn_blocking(move || r.reload("SIGHUP")).await;
        }
    });
    if progress > 0 {
        rt.spawn(log_progress(
            running.stats().to_vec(),
            Duration::from_secs(progress),
        ));
    }
    rt.block_on(wait_for_signal())?;
    tracing::info!("signal received: stopping fetch, finishing in-flight batches, committing");
    // A second signal means "now": exit without waiting for the drain.
    rt.spawn(async {
        if wait_for_signal().await.is_ok() {
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        }
    });
    let stats = running.stats().to_vec();
    running.stop();
    for (name, s) in &stats {
        let n = |c: &std::sync::atomic::AtomicU64| PipelineStats::get(c);
        tracing::info!(pipeline = %name, consumed = n(&s.consumed), dropped = n(&s.dropped),
            finalized = n(&s.finalized), retries = n(&s.retries),
            dead_lettered = n(&s.dead_lettered), skipped = n(&s.skipped),
            failed_open = n(&s.failed_open), delivered = ?s.delivered(), "pipeline totals");
    }
    let r = reloader.stats();
    tracing::info!(
        applied = PipelineStats::get(&r.applied),
        rejected = PipelineStats::get(&r.rejected),
        swaps = PipelineStats::get(&r.swaps),
        "reload totals"
    );
    tracing::info!("flumen stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// The file watcher and the admin endpoint, as configured.
fn start_reload_triggers(
    config: &Config,
    reloader: &reload::ReloadHandle,
    pipelines: &[(String, std::sync::Arc<PipelineStats>)],
) -> anyhow::Result<()> {
    if config.reload.watch {
        reload::watch(
            reloader.clone(),
            Duration::from_millis(config.reload.debounce_ms),
        )
        .context("watching the component files for hot reload")?;
    }
    if let Some(admin) = &config.admin {
        admin::serve(&admin.listen, reloader.clone(), pipelines.to_vec())
            .with_context(|| format!("starting the admin endpoint on {}", admin.listen))?;
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Logs a progress line per pipeline every `every`: totals, the rate since
/// the last line, and the lag, so that a long run's log shows it moving.
async fn log_progress(pipelines: Vec<(String, std::sync::Arc<PipelineStats>)>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut last: Vec<u64> = vec![0; pipelines.len()];
    loop {
        tick.tick().await;
        for ((name, s), last) in pipelines.iter().zip(&mut last) {
            let consumed = PipelineStats::get(&s.consumed);
            let lag: i64 = s.lag().iter().map(|(_, l)| l).sum();
            tracing::info!(
                pipeline = %name,
                consumed,
                per_s = (consumed.saturating_sub(*last) as f64 / every.as_secs_f64()).round() as u64,
                dropped = PipelineStats::get(&s.dropped),
                finalized = PipelineStats::get(&s.finalized),
                delivered = ?s.delivered(),
                retries = PipelineStats::get(&s.retries),
                blocked = PipelineStats::get(&s.blocked),
                unreadable = ?s.unreadable(),
                lag,
                "progress"
            );
            *last = consumed;
        }
    }
}
